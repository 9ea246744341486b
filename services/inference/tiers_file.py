"""The tiers file (STEADYEYE_INFERENCE_TIERS_FILE): the models inference may answer a frame
with, in order, each with a latency budget, and the rules for leaving and returning to a tier.
Every mistake is reported as `file:line: where: what` (services.core.yaml_file).

    tiers:
      - {name: primary, triton_url: triton-gpu:8001, model: yolox_nano_trt, budget_ms: 100}
      - {name: int8, triton_url: triton-cpu:8001, model: yolox_nano_int8, budget_ms: 400}
    health: {window_s: 5, hold_s: 10}

Defaults: docs/design/degradation.md §4.1, measured on this project's CPU stack (§3, §4.2).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from yaml.nodes import Node

from services.core import yaml_file
from services.core.errors import ConfigError
from services.core.yaml_file import Loc, Problem

MAX_TIERS = 4


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TierSpec(_Strict):
    # In Detections.tier, the metrics and the serving events.
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    triton_url: str = Field(min_length=1)
    model: str = Field(min_length=1)
    # The p95 over the health window above this: the tier is left.
    budget_ms: float = Field(gt=0)
    # Per request; default 2 x budget. A tier with a tier after it gets no retries: a request
    # that fails or times out goes on to the next tier at once.
    timeout_ms: float | None = Field(None, gt=0)

    @property
    def timeout_s(self) -> float:
        return (self.timeout_ms or 2 * self.budget_ms) / 1000

    @property
    def budget_s(self) -> float:
        return self.budget_ms / 1000


class HealthRules(_Strict):
    window_s: float = Field(5.0, gt=0)  # sliding window of a tier's requests, per replica
    min_samples: int = Field(20, ge=1)  # the latency rule waits for this many in the window
    unavailable_grace_s: float = Field(1.0, ge=0)  # only failures to reach it for this long
    queue_full_count: int = Field(3, ge=1)  # this many queue-full errors in the window
    # Least time away from a tier; doubled after a trip within `retrip_s` of a return (cap).
    hold_s: float = Field(10.0, ge=0)
    max_hold_s: float = Field(120.0, ge=0)
    retrip_s: float = Field(60.0, ge=0)
    probe_every_s: float = Field(0.5, gt=0)  # one probe in flight at a time, a real frame
    probe_window: int = Field(6, ge=1)  # consecutive probes each within recover_ratio x budget
    recover_ratio: float = Field(0.8, gt=0, le=1)
    # Share of cameras back on the tier, one step per ramp_step_s: all at once re-tripped a
    # shared 2-core machine in 3 of 4 runs, 25 % steps in 0 of 3 (design §4.2).
    ramp_steps: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0)
    ramp_step_s: float = Field(1.0, ge=0)

    @model_validator(mode="after")
    def _ramp(self) -> HealthRules:
        steps = self.ramp_steps
        if not steps or steps[-1] != 1.0 or any(not 0 < s <= 1 for s in steps):
            raise ValueError(f"ramp_steps {list(steps)} must be shares in (0, 1] ending at 1.0")
        if list(steps) != sorted(set(steps)):
            raise ValueError(f"ramp_steps {list(steps)} must rise")
        return self


class TiersFile(_Strict):
    tiers: list[TierSpec] = Field(min_length=1, max_length=MAX_TIERS)
    health: HealthRules = HealthRules()


_NO_UNION = yaml_file.Union("tier", {})


def load_tiers(path: Path) -> TiersFile:
    path = Path(path)
    return parse_tiers(yaml_file.read_text(path, ConfigError), str(path))


def parse_tiers(text: str, name: str = "<tiers>") -> TiersFile:
    root, data = yaml_file.parse(text, name, ConfigError, "expected a mapping with 'tiers'")
    problems = yaml_file.duplicate_keys(root)
    parsed, errors = yaml_file.validate(TiersFile, data)
    problems += [yaml_file.describe(e, root, data, _NO_UNION, _model_at) for e in errors]
    if parsed is not None:
        problems += _file_rules(parsed, root)
    yaml_file.raise_problems(problems, name, ConfigError)
    assert parsed is not None
    return parsed


def _model_at(loc: Loc, _data: dict[str, Any]) -> type[BaseModel]:
    if loc[:1] == ("tiers",) and len(loc) > 2:
        return TierSpec
    if loc[:1] == ("health",) and len(loc) > 1:
        return HealthRules
    return TiersFile


def _file_rules(parsed: TiersFile, root: Node) -> list[Problem]:
    """Names are unique; a timeout shorter than the budget would hide every slow request."""
    found: list[Problem] = []
    first: dict[str, int] = {}
    for i, tier in enumerate(parsed.tiers):
        if tier.name in first:
            line, path = yaml_file.locate(root, ("tiers", i, "name"))
            found.append((line, f"{path}: duplicate name {tier.name!r} "
                                f"(also tiers[{first[tier.name]}])"))  # fmt: skip
        first.setdefault(tier.name, i)
        if tier.timeout_ms is not None and tier.timeout_ms < tier.budget_ms:
            line, path = yaml_file.locate(root, ("tiers", i, "timeout_ms"))
            found.append((line, f"{path}: {tier.timeout_ms:g} is below budget_ms "
                                f"{tier.budget_ms:g}"))  # fmt: skip
    return found
