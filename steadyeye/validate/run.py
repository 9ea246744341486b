"""`steadyeye model validate`: a candidate export against the model serving now, on frames
like production's, through Triton, gated by a policy. Serves both models (in the configured
Triton, else an embedded one), runs them on the same frames, judges what they did with
steadyeye.validate.checks, and returns one JSON-able result."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from services.contract import ModelContract
from services.core.errors import ConfigError
from services.rollout.agreement import Agreement, compare
from steadyeye.modelimport import ModelImportError
from steadyeye.validate.checks.coco_map import map_check
from steadyeye.validate.checks.contract import contract_check
from steadyeye.validate.checks.detections import (
    boxes_check,
    classes_check,
    detections_per_frame_check,
)
from steadyeye.validate.checks.latency import latency_check
from steadyeye.validate.checks.memory import memory_check
from steadyeye.validate.frames import requested_frames
from steadyeye.validate.inference import CandidateFailed, infer, interleaved
from steadyeye.validate.request import TRITON_URL_ENV, Request, UsageError, parse_against
from steadyeye.validate.result import FAIL, PASS, Side, check, in_order, worst_frames
from steadyeye.validate.server import (
    EmbeddedTriton,
    Server,
    ServingError,
    configured_server,
    memory,
)
from steadyeye.validate.staging import import_candidate, stage_reference


class LoadRefused(Exception):
    """The configured Triton does not load models on request (model control mode none/poll)."""


class Validation:
    """One validation: the Triton serving both models, what each returned, the checks. The
    HTML report draws from it after run()."""

    def __init__(self, request: Request, say: Callable[[str], None]) -> None:
        self.request, self.policy, self.say = request, request.policy, say
        self.checks: dict[str, dict] = {}
        self.notes: list[str] = []
        self.timings: dict[str, float] = {}
        self.source, self.labels = requested_frames(request)
        self.against = parse_against(request.against)
        self.cand_digest = hashlib.sha256(request.candidate.read_bytes()).hexdigest()
        # A name of its own, never a version of the served model: see server.py.
        self.cand_name = f"validate-{self.against.name}-{self.cand_digest[:8]}"
        self.server: Server | None = None
        self.embedded: EmbeddedTriton | None = None
        self.reference: Side | None = None
        self.candidate: Side | None = None
        self.agreement: Agreement | None = None
        self.memory_before: dict = {}
        self.memory_after: dict = {}
        self.workdir = Path(tempfile.mkdtemp(prefix="steadyeye-validate-"))
        self.repository = self.workdir / "repository"

    def run(self) -> dict:
        started = time.monotonic()
        per_class: list[dict] = []
        try:
            self._connect()
            if self._serve_both() and self._measure():
                per_class = self._judge()
        except ServingError as exc:
            raise UsageError(str(exc)) from None
        finally:
            if self.embedded is not None:
                self.embedded.stop()
            elif self.server is not None:
                self.server.close()
            shutil.rmtree(self.workdir, ignore_errors=True)
        self.timings["total_s"] = round(time.monotonic() - started, 2)
        return self._result(per_class)

    # -- Triton and the two models ------------------------------------------------------------

    def _connect(self) -> None:
        url = os.environ.get(TRITON_URL_ENV)
        if self.against.file is None and url:
            server = configured_server(url)
            if server is not None:
                self.server = server
                self.say(f"using the Triton at {url} ({TRITON_URL_ENV})")
                return
            self.say(f"the Triton at {url} does not answer: starting the embedded one")
            self.notes.append(f"configured Triton {url} did not answer: embedded Triton used")
        self._start_embedded()

    def _start_embedded(self) -> None:
        self.repository.mkdir(parents=True, exist_ok=True)
        note = stage_reference(self.request, self.against, self.repository)
        if note:
            self.notes.append(note)
        started = time.monotonic()
        self.embedded = EmbeddedTriton(self.workdir, self.repository)
        self.server = self.embedded.start()
        try:
            self.timings["load_reference_s"] = round(self.server.load(self.against.name), 2)
        except ServingError as exc:
            raise UsageError(f"{exc}\n{self.embedded.tail()}") from None
        self.timings["start_triton_s"] = round(time.monotonic() - started, 2)
        self.say(f"embedded Triton on {self.server.url} serving {self.against.name}")

    def _side(self, role: str, name: str, version: str) -> Side:
        assert self.server is not None
        config = self.server.config(name, version)
        try:
            contract = ModelContract.from_config(config)
        except (ValueError, KeyError) as exc:
            raise ServingError(f"{role} {name}: {exc}") from None
        return Side(role, name, version, config, contract)

    def _serve_both(self) -> bool:
        """The reference and the candidate loaded side by side; False (the import check
        failed) when the candidate cannot be imported or served."""
        assert self.server is not None
        self.reference = self._side("reference", self.against.name, self.against.version)
        try:
            return self._serve_candidate()
        except LoadRefused as exc:
            url = self.server.url
            self.server.close()
            self.say(
                f"the Triton at {url} does not load models on request ({exc}): "
                "validating in the embedded Triton"
            )
            self.notes.append(f"{url} refused to load the candidate: embedded Triton used")
            try:
                self._start_embedded()
            except UsageError as refused:
                raise UsageError(
                    f"the Triton at {url} does not load models on request: start it with "
                    f"--model-control-mode explicit, or give --against CURRENT.onnx "
                    f"({refused})"
                ) from None
            self.reference = self._side("reference", self.against.name, self.against.version)
            return self._serve_candidate()

    def _serve_candidate(self) -> bool:
        assert self.server is not None and self.reference is not None
        if self.server.kind == "embedded":
            target, into = "python", self.repository
        else:
            backend = self.reference.config.get("backend", "")
            target = backend if backend in ("python", "onnxruntime") else "onnxruntime"
            if target != backend:
                self.notes.append(
                    f"reference runs on {self.reference.config.get('platform')}; "
                    "the candidate was served with onnxruntime"
                )
            into = self.workdir / "candidate"
        started = time.monotonic()
        try:
            model_dir = import_candidate(
                self.request, self.cand_name, self.reference.config, target, into
            )
        except ModelImportError as exc:
            self.checks["import"] = check(FAIL, f"`model import` refuses it: {exc}")
            return False
        self.timings["import_candidate_s"] = round(time.monotonic() - started, 2)
        # The embedded Triton reads its own repository; a configured one gets the files.
        files = None if self.server.kind == "embedded" else model_dir
        self._warm(self.reference)
        self.memory_before = memory(self.server.pid, [self.against.name])
        try:
            self.timings["load_candidate_s"] = round(self.server.load(self.cand_name, files), 2)
        except ServingError as exc:
            if self.server.kind == "configured" and "not allowed" in str(exc):
                raise LoadRefused(str(exc)) from None
            tail = f"\n{self.embedded.tail()}" if self.embedded else ""
            self.checks["import"] = check(FAIL, f"Triton does not serve it: {exc}{tail}")
            return False
        self.checks["import"] = check(
            PASS, "imported and served", name=self.cand_name, sha256=self.cand_digest
        )
        return True

    # -- the frames ---------------------------------------------------------------------------

    def _round_trip(self, side: Side, image: np.ndarray) -> float:
        """The round trip in ms; the detections go to `side`."""
        assert self.server is not None
        return infer(self.server.client, side, image)[0]

    def _warm(self, side: Side) -> None:
        image = next(iter(self.source))[2]
        for _ in range(self.policy.latency.warmup_requests):
            self._round_trip(side, image)

    def _measure(self) -> bool:
        """Both models on every frame, then latency (which may measure again, so it runs while
        both are loaded); False (the import check failed) when the candidate cannot run."""
        assert self.server is not None and self.reference is not None
        try:
            self.candidate = self._side("candidate", self.cand_name, "")
            self._run_frames()
            self.memory_after = memory(self.server.pid, [self.against.name, self.cand_name])
            self.checks["latency"] = latency_check(
                self.reference, self.candidate, self.policy.latency, self._latency_round, self.say
            )
        except CandidateFailed as exc:
            self.checks["import"] = check(FAIL, str(exc))
            return False
        finally:
            if self.server.kind == "configured":
                self.server.unload(self.cand_name)
        return True

    def _run_frames(self) -> None:
        reference, candidate, server = self.reference, self.candidate, self.server
        assert reference is not None and candidate is not None and server is not None
        self._warm(candidate)
        before = {
            side.role: server.statistics(side.name, side.version) for side in (reference, candidate)
        }
        started = time.monotonic()
        for index, _, image in self.source:
            for side in interleaved(index, reference, candidate):
                elapsed, detections = infer(server.client, side, image)
                side.latencies_ms.append(elapsed)
                side.detections.append(detections)
        self.timings["frames_s"] = round(time.monotonic() - started, 2)
        for side in (reference, candidate):
            after = server.statistics(side.name, side.version)
            side.server_stats = {k: v - before[side.role].get(k, 0) for k, v in after.items()}
        if not reference.detections:
            raise UsageError(f"{self.source.description}: no frames could be read")

    def _latency_round(self, limit: int) -> tuple[list[float], list[float]]:
        """Round trips only, interleaved like the first pass, on the first `limit` frames."""
        assert self.reference is not None and self.candidate is not None
        times: dict[str, list[float]] = {"reference": [], "candidate": []}
        for index, _, image in self.source:
            if index >= limit:
                break
            for side in interleaved(index, self.reference, self.candidate):
                times[side.role].append(self._round_trip(side, image))
        return times["reference"], times["candidate"]

    # -- the checks and the result ------------------------------------------------------------

    def _judge(self) -> list[dict]:
        """The remaining checks; returns the per-class rows."""
        ref, cand = self.reference, self.candidate
        assert ref is not None and cand is not None
        policy = self.policy
        self.checks["contract"] = contract_check(ref, cand, policy.contract)
        self.checks["memory"] = memory_check(
            self.memory_before, self.memory_after, ref.name, cand.name, policy.memory
        )
        rules = policy.agreement
        self.agreement = compare(
            list(zip(ref.detections, cand.detections, strict=True)),
            rules.iou,
            rules.serve_score,
            rules.margin,
        )
        self.checks["detections_per_frame"] = detections_per_frame_check(self.agreement, rules)
        self.checks["boxes"] = boxes_check(self.agreement, rules)
        self.checks["classes"], per_class = classes_check(
            self.agreement, ref.contract.class_names, cand.contract.class_names, rules
        )
        if self.labels is not None:
            self.checks["map"] = map_check(
                self.labels, self.source.image_ids, ref, cand, policy.map
            )
        return per_class

    def _result(self, per_class: list[dict]) -> dict:
        ref = self.reference
        worst: list[dict] = []
        if self.agreement is not None:
            # Consecutive video frames look alike: show frames at least 10 apart.
            gap = 10 if self.source.video is not None else 1
            worst = worst_frames(self.agreement.frame_disagreement, gap)
        checks = in_order(self.checks)
        failed = [name for name, entry in checks.items() if entry["status"] == FAIL]
        return {
            "passed": not failed and "import" in self.checks,
            "failed": failed,
            "candidate": {
                "file": str(self.request.candidate),
                "family": self.request.family,
                "sha256": self.cand_digest,
                "served_as": self.cand_name,
            },
            "reference": {
                "against": self.request.against,
                "name": self.against.name,
                "version": (ref.served_version if ref else "") or self.against.version,
            },
            "triton": {
                "kind": self.server.kind if self.server else None,
                "url": self.server.url if self.server else None,
            },
            "frames": {
                "source": self.source.description,
                "count": len(ref.detections) if ref else 0,
            },
            "checks": checks,
            "per_class": per_class,
            "worst_frames": worst,
            "policy": self.policy.model_dump(mode="json"),
            "notes": self.notes,
            "timings": self.timings,
        }


def validate(
    request: Request, say: Callable[[str], None] = lambda _: None
) -> tuple[dict, Validation]:
    """Run the validation; the Validation keeps what the HTML report draws."""
    try:
        validation = Validation(request, say)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    return validation.run(), validation
