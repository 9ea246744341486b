"""The thresholds `steadyeye model validate` and the rollout controller gate on: a YAML file,
every key optional.

Defaults come from docs/design/model-rollout.md §3.4, measured on YOLOX-nano and its int8,
÷255 and class-swapped exports; examples/validate-policy.yaml documents each key. A key this
file does not know is an error naming the valid ones (a misspelled threshold must never fall
back to its default silently).
"""

from __future__ import annotations

import difflib
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class PolicyError(Exception):
    """The policy file cannot be read or has invalid keys or values (exit code 2)."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Agreement(_Section):
    """Box-matched agreement with the current model (the reference) on the same frames."""

    iou: float = Field(0.5, gt=0, le=1)
    # What inference serves downstream (STEADYEYE_INFERENCE_MIN_SCORE).
    serve_score: float = Field(0.25, ge=0, le=1)
    # A disagreement counts only where one model is sure (score >= serve_score + margin) and
    # the other has no matching box at all down to serve_score - margin: boxes near the
    # threshold flicker between any two models and are not evidence of a worse one.
    margin: float = Field(0.15, ge=0, le=1)
    min_box_f1: float = Field(0.85, ge=0, le=1)  # class-agnostic: are the objects found?
    min_class_f1: float = Field(0.85, ge=0, le=1)  # class-aware: ... and named the same?
    # Per class, for classes with at least min_class_support sure reference boxes (a
    # constant low-score false positive of the reference never reaches that support).
    min_per_class_f1: float = Field(0.7, ge=0, le=1)
    min_class_support: int = Field(20, ge=1)
    # Mean detections per frame at serve_score, candidate / reference.
    detections_ratio: tuple[float, float] = (0.7, 1.3)
    # Fewer sure reference boxes than this on the frames: too little evidence to pass.
    min_reference_boxes: int = Field(50, ge=1)

    @model_validator(mode="after")
    def _ranges(self) -> Agreement:
        low, high = self.detections_ratio
        if not 0 <= low <= high:
            raise ValueError(
                f"detections_ratio [{low}, {high}] must be [low, high] with 0<=low<=high"
            )
        if self.serve_score - self.margin < 0 or self.serve_score + self.margin > 1:
            raise ValueError(
                f"serve_score ± margin ({self.serve_score} ± {self.margin}) must stay in [0, 1]"
            )
        return self

    @property
    def sure(self) -> float:
        return self.serve_score + self.margin

    @property
    def present(self) -> float:
        return self.serve_score - self.margin


class Latency(_Section):
    """Per-frame round trips through Triton, batch 1, the two models interleaved."""

    max_p95_ratio: float | None = Field(1.5, gt=0)  # candidate p95 / reference p95
    max_p95_ms: float | None = Field(None, gt=0)
    warmup_requests: int = Field(5, ge=0)
    # A failing round is measured once more (up to 100 frames) and only the second counts.
    confirm_failures: bool = True


class Memory(_Section):
    """What the candidate costs in memory on this host (the figures say what was measured)."""

    max_ratio: float | None = Field(1.5, gt=0)  # candidate / reference
    max_mb: float | None = Field(None, gt=0)


class MeanAP(_Section):
    """COCO mAP@[.5:.95] on labelled frames (--labels), both models on the same labels."""

    max_drop: float = Field(0.02, ge=0, le=1)  # reference mAP - candidate mAP
    min_map: float | None = Field(None, ge=0, le=1)


class Contract(_Section):
    """max_detections (K in boxes [K, 4]) may differ: the services read `count`."""

    allow_max_detections_change: bool = True


class Rollout(_Section):
    """The rollout controller on live traffic. A window passes when the `agreement` gates and
    `latency.max_p95_ratio` hold on it, with the error rate and drift below; the first window
    that passes promotes. A hard breach rolls back at once, judged from `hard_after_frames`
    compared frames on; `max_windows` judged windows without a pass roll back too."""

    # Frames compared per window (shadow: sampled frames with both outputs; canary: sampled
    # frames of the candidate's cameras, which the serving version also answers).
    window_frames: int = Field(200, ge=10)
    max_windows: int = Field(5, ge=1)
    # No decision after this long (a window never fills: cameras quiet, sample too small).
    max_duration_s: float = Field(86_400.0, gt=0)
    # The candidate's failed requests / all its requests.
    max_error_rate: float = Field(0.01, ge=0, le=1)
    # Drift episodes started on cameras the candidate serves (canary) during the window.
    max_drift_events: int = Field(0, ge=0)
    # Hard breaches: a candidate this far off will not get better with more frames.
    hard_after_frames: int = Field(30, ge=1)
    hard_min_reference_boxes: int = Field(20, ge=1)
    hard_min_box_f1: float = Field(0.5, ge=0, le=1)
    hard_min_class_f1: float = Field(0.5, ge=0, le=1)
    hard_detections_ratio: tuple[float, float] = (0.3, 3.0)
    hard_error_rate: float = Field(0.1, ge=0, le=1)
    hard_p95_ratio: float | None = Field(3.0, gt=0)

    @model_validator(mode="after")
    def _ranges(self) -> Rollout:
        low, high = self.hard_detections_ratio
        if not 0 <= low <= high:
            raise ValueError(
                f"hard_detections_ratio [{low}, {high}] must be [low, high] with 0<=low<=high"
            )
        if self.hard_after_frames > self.window_frames:
            raise ValueError(
                f"hard_after_frames ({self.hard_after_frames}) must not exceed window_frames "
                f"({self.window_frames})"
            )
        return self


class Policy(_Section):
    agreement: Agreement = Agreement()
    latency: Latency = Latency()
    memory: Memory = Memory()
    map: MeanAP = MeanAP()
    contract: Contract = Contract()
    rollout: Rollout = Rollout()


def _valid_keys(model: type[BaseModel], path: tuple) -> list[str]:
    """The keys allowed at `path` inside the policy (a nested section's fields)."""
    for part in path:
        field = model.model_fields.get(str(part))
        if field is None or not isinstance(field.annotation, type):
            return []
        if not issubclass(field.annotation, BaseModel):
            return []
        model = field.annotation
    return list(model.model_fields)


def parse_policy(data: object, source: str = "policy") -> Policy:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise PolicyError(f"{source}: expected a mapping of sections, got {type(data).__name__}")
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"])
            if err["type"] == "extra_forbidden":
                valid = _valid_keys(Policy, err["loc"][:-1])
                close = difflib.get_close_matches(str(err["loc"][-1]), valid, n=1, cutoff=0.6)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                problems.append(f"{where}: unknown key{hint}; valid keys: {', '.join(valid)}")
            else:
                problems.append(f"{where or '(policy)'}: {err['msg']}")
        raise PolicyError(f"{source}: invalid policy:\n  " + "\n  ".join(problems)) from None


def load_policy(path: Path | None) -> Policy:
    if path is None:
        return Policy()
    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise PolicyError(f"{path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise PolicyError(f"{path}: not valid YAML: {exc}") from None
    return parse_policy(data, str(path))
