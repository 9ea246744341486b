"""`steadyeye model validate`: a candidate export against the model serving now, on frames
like production's, through Triton, gated by a policy. Returns one JSON-able result."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from services.contract import ModelContract
from services.core.errors import ConfigError
from steadyeye.validate.agreement import FrameDetections, compare
from steadyeye.validate.frames import FrameSource, labelled_frames, open_frames
from steadyeye.validate.policy import Policy
from steadyeye.validate.server import (
    EmbeddedTriton,
    Server,
    ServingError,
    as_python_backend,
    configured_server,
    memory,
)

TRITON_URL_ENV = "STEADYEYE_INFERENCE_TRITON_URL"
PASS, FAIL, SKIPPED = "pass", "fail", "skipped"
CHECKS = (
    "import",
    "contract",
    "latency",
    "memory",
    "detections_per_frame",
    "boxes",
    "classes",
    "map",
)  # the order results list them in
REPORT_FRAMES = 6


class UsageError(Exception):
    """Bad arguments or environment: nothing was validated (exit code 2)."""


class CandidateFailed(Exception):
    """Triton loaded the candidate but could not run it on a frame: a failed validation."""


class LoadRefused(Exception):
    """The configured Triton does not load models on request (model control mode none/poll)."""


@dataclass
class Request:
    candidate: Path
    family: str
    against: str  # NAME[:VERSION] or FILE.onnx
    policy: Policy = field(default_factory=Policy)
    frames: Path | None = None
    labels: Path | None = None
    max_frames: int | None = 200
    class_names: list[str] | None = None
    against_family: str | None = None
    repository: Path = Path("model_repository")  # where `model import` wrote NAME


@dataclass
class Side:
    """One served model: how to call it, its contract, what it returned per frame."""

    role: str
    name: str
    version: str
    config: dict
    contract: ModelContract
    latencies_ms: list[float] = field(default_factory=list)
    detections: list[FrameDetections] = field(default_factory=list)
    served_version: str = ""
    server_stats: dict[str, float] = field(default_factory=dict)  # Triton's, during the frames


def parse_against(against: str) -> tuple[Path | None, str, str]:
    """FILE.onnx -> (path, stem, ""); NAME[:VERSION] -> (None, NAME, VERSION)."""
    if against.endswith(".onnx") or Path(against).is_file():
        path = Path(against)
        if not path.is_file():
            raise UsageError(f"--against {against}: no such file")
        return path, re.sub(r"[^A-Za-z0-9_.-]", "_", path.stem) or "reference", ""
    name, _, version = against.partition(":")
    if not name or (version and not version.isdigit()):
        raise UsageError(f"--against {against!r}: expected NAME, NAME:VERSION or FILE.onnx")
    return None, name, version


def _check(status: str, reason: str, **figures: object) -> dict:
    return {"status": status, "reason": reason, "figures": figures}


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class Validation:
    def __init__(self, request: Request, say: Callable[[str], None]) -> None:
        self.request, self.policy, self.say = request, request.policy, say
        self.checks: dict[str, dict] = {}
        self.notes: list[str] = []
        self.timings: dict[str, float] = {}
        self.labels: dict | None = None
        self.source = self._frames()
        self.against_file, self.ref_name, self.ref_version = parse_against(request.against)
        self.server: Server | None = None
        self.embedded: EmbeddedTriton | None = None
        self.cand_name = ""
        self.cand_digest = _digest(request.candidate)
        self.reference: Side | None = None
        self.candidate: Side | None = None
        self.agreement = None
        self.memory_before: dict = {}
        self.memory_after: dict = {}
        self.workdir = Path(tempfile.mkdtemp(prefix="steadyeye-validate-"))
        self.repository = self.workdir / "repository"

    # -- setup ------------------------------------------------------------------------------

    def _frames(self) -> FrameSource:
        request = self.request
        if request.labels is not None:
            if request.frames is not None and not request.frames.is_dir():
                raise UsageError("with --labels, --frames must be the labelled images' folder")
            source, self.labels = labelled_frames(
                request.labels, request.frames, request.max_frames
            )
            return source
        if request.frames is None:
            from services.core.settings import load
            from steadyeye.assets import MediaSettings, media_file

            return open_frames(media_file(load(MediaSettings), "vtest.avi"), request.max_frames)
        return open_frames(request.frames, request.max_frames)

    def _reference_dir(self) -> Path | None:
        """Embedded mode: put the reference into our repository as a Python-backend model."""
        from steadyeye.modelimport import ModelImportError, import_model

        target = self.repository / self.ref_name
        if self.against_file is not None:
            family = self.request.against_family or self.request.family
            try:
                return import_model(
                    self.against_file, family, self.repository, self.ref_name, instances=1
                )
            except ModelImportError as exc:
                raise UsageError(f"--against {self.against_file}: {exc}") from None
        local = self.request.repository / self.ref_name
        if (local / "config.pbtxt").is_file():
            if self.ref_version and not (local / self.ref_version).is_dir():
                raise UsageError(f"{local} has no version {self.ref_version}")
            shutil.copytree(local, target, ignore=shutil.ignore_patterns("*.plan"))
            try:
                as_python_backend(target, self.ref_version or None)
            except ServingError as exc:
                raise UsageError(str(exc)) from None
            self.notes.append(f"reference {self.ref_name} from {local}")
            return target
        from services.core.settings import load
        from steadyeye.assets import ModelSettings, model_file

        settings = load(ModelSettings)
        if self.ref_name == settings.name and not self.ref_version:
            source = model_file(settings)
            self.notes.append(f"reference {self.ref_name}: the demo model {source}")
            return import_model(
                source, settings.family, self.repository, self.ref_name, instances=1
            )
        return None

    def _start_embedded(self) -> None:
        self.repository.mkdir(parents=True, exist_ok=True)
        if self._reference_dir() is None:
            raise UsageError(
                f"--against {self.request.against}: no Triton serves it (set {TRITON_URL_ENV}), "
                f"it is not in {self.request.repository}/ and it is not the demo model; "
                "give the current model's ONNX file instead"
            )
        started = time.monotonic()
        self.embedded = EmbeddedTriton(self.workdir, self.repository)
        self.server = self.embedded.start()
        try:
            self.timings["load_reference_s"] = round(self.server.load(self.ref_name), 2)
        except ServingError as exc:
            raise UsageError(f"{exc}\n{self.embedded.tail()}") from None
        self.timings["start_triton_s"] = round(time.monotonic() - started, 2)
        self.say(f"embedded Triton on {self.server.url} serving {self.ref_name}")

    def _connect(self) -> None:
        url = os.environ.get(TRITON_URL_ENV)
        if self.against_file is None and url:
            server = configured_server(url)
            if server is not None:
                self.server = server
                self.say(f"using the Triton at {url} ({TRITON_URL_ENV})")
                return
            self.say(f"the Triton at {url} does not answer: starting the embedded one")
            self.notes.append(f"configured Triton {url} did not answer: embedded Triton used")
        self._start_embedded()

    def _side(self, role: str, name: str, version: str) -> Side:
        assert self.server is not None
        config = self.server.config(name, version)
        try:
            contract = ModelContract.from_config(config)
        except (ValueError, KeyError) as exc:
            raise ServingError(f"{role} {name}: {exc}") from None
        return Side(role, name, version, config, contract)

    # -- the candidate ------------------------------------------------------------------------

    def _import_candidate(self, target: str, into: Path) -> Path | None:
        from steadyeye.modelimport import ModelImportError, import_model

        params = {
            k: v.get("string_value", "")
            for k, v in self.reference.config.get("parameters", {}).items()
        }
        options: dict = {}
        for key, cast in (
            ("score_threshold", float),
            ("iou_threshold", float),
            ("max_detections", int),
        ):
            if params.get(key):
                options[key] = cast(params[key])
        started = time.monotonic()
        try:
            path = import_model(
                self.request.candidate,
                self.request.family,
                into,
                self.cand_name,
                target=target,
                class_names=self.request.class_names,
                instances=1,
                **options,
            )
        except ModelImportError as exc:
            self.checks["import"] = _check(FAIL, f"`model import` refuses it: {exc}")
            return None
        self.timings["import_candidate_s"] = round(time.monotonic() - started, 2)
        return path

    def _serve_candidate(self) -> bool:
        assert self.server is not None and self.reference is not None
        digest = self.cand_digest[:8]
        self.cand_name = f"validate-{self.ref_name}-{digest}"
        if self.server.kind == "embedded":
            model_dir = self._import_candidate("python", self.repository)
            files = None
        else:
            backend = self.reference.config.get("backend", "")
            target = backend if backend in ("python", "onnxruntime") else "onnxruntime"
            if target != backend:
                self.notes.append(
                    f"reference runs on {self.reference.config.get('platform')}; "
                    "the candidate was served with onnxruntime"
                )
            model_dir = self._import_candidate(target, self.workdir / "candidate")
            files = model_dir
        if model_dir is None:
            return False
        self._warm(self.reference)
        self.memory_before = memory(self.server.pid, [self.ref_name])
        try:
            self.timings["load_candidate_s"] = round(self.server.load(self.cand_name, files), 2)
        except ServingError as exc:
            if self.server.kind == "configured" and "not allowed" in str(exc):
                raise LoadRefused(str(exc)) from None
            tail = f"\n{self.embedded.tail()}" if self.embedded else ""
            self.checks["import"] = _check(FAIL, f"Triton does not serve it: {exc}{tail}")
            return False
        self.checks["import"] = _check(
            PASS, "imported and served", name=self.cand_name, sha256=self.cand_digest
        )
        return True

    # -- the frames ---------------------------------------------------------------------------

    def _infer(self, side: Side, image: np.ndarray) -> tuple[float, FrameDetections]:
        import tritonclient.grpc as grpcclient

        from services.inference.boxes import to_detections
        from services.preprocess.letterbox import letterbox
        from steadyeye.v1.common_pb2 import FrameRef
        from steadyeye.v1.frames_pb2 import ReadyFrame

        assert self.server is not None
        boxed = letterbox(image, side.contract)
        request = grpcclient.InferInput(side.contract.input_name, [1, *boxed.image.shape], "UINT8")
        request.set_data_from_numpy(boxed.image[None])
        started = time.perf_counter()
        result = self.server.client.infer(
            side.name, [request], model_version=side.version, client_timeout=60
        )
        elapsed_ms = (time.perf_counter() - started) * 1000
        side.served_version = result.get_response().model_version
        boxes, scores, classes, count = (
            result.as_numpy(n)[0] for n in ("boxes", "scores", "classes", "count")
        )
        height, width = image.shape[:2]
        frame = ReadyFrame(
            ref=FrameRef(width=width, height=height),
            scale=boxed.scale,
            pad_x=boxed.pad_x,
            pad_y=boxed.pad_y,
        )
        found = to_detections(frame, boxes, scores, classes, int(count[0]), side.contract, 0.0)
        detections = FrameDetections(
            np.array([[d.box.x1, d.box.y1, d.box.x2, d.box.y2] for d in found], np.float32).reshape(
                -1, 4
            ),
            np.array([d.score for d in found], np.float32),
            np.array([d.class_id for d in found], np.int64),
        )
        return elapsed_ms, detections

    def _call(self, side: Side, image: np.ndarray) -> tuple[float, FrameDetections]:
        """_infer, with Triton's errors turned into what they mean for the validation."""
        from tritonclient.utils import InferenceServerException

        try:
            return self._infer(side, image)
        except InferenceServerException as exc:
            if side.role == "candidate":
                raise CandidateFailed(f"Triton could not run it: {exc}") from None
            raise ServingError(f"the serving model {side.name} failed: {exc}") from None

    def _warm(self, side: Side) -> None:
        image = next(iter(self.source))[2]
        for _ in range(self.policy.latency.warmup_requests):
            self._call(side, image)

    def _run_frames(self) -> None:
        assert self.reference is not None and self.candidate is not None
        self._warm(self.candidate)
        assert self.server is not None
        before = {
            side.role: self.server.statistics(side.name, side.version)
            for side in (self.reference, self.candidate)
        }
        started = time.monotonic()
        for index, _, image in self.source:
            # Alternate who goes first, so neither model always runs on a cooler cache.
            order = (
                (self.reference, self.candidate)
                if index % 2 == 0
                else (self.candidate, self.reference)
            )
            for side in order:
                elapsed, detections = self._call(side, image)
                side.latencies_ms.append(elapsed)
                side.detections.append(detections)
        self.timings["frames_s"] = round(time.monotonic() - started, 2)
        for side in (self.reference, self.candidate):
            after = self.server.statistics(side.name, side.version)
            side.server_stats = {k: v - before[side.role].get(k, 0) for k, v in after.items()}
        if not self.reference.detections:
            raise UsageError(f"{self.source.description}: no frames could be read")

    # -- the checks ---------------------------------------------------------------------------

    def _contract(self) -> None:
        ref, cand = self.reference, self.candidate
        assert ref is not None and cand is not None
        problems, notes = [], []

        def described(config: dict, contract: ModelContract) -> dict:
            outputs = {
                o["name"]: {"data_type": o.get("data_type"), "dims": o.get("dims")}
                for o in config.get("output", [])
            }
            first = config["input"][0]
            return {
                "input": f"{first['name']} {first.get('data_type')} {first.get('dims')}",
                "input_size": f"{contract.input_width}x{contract.input_height}",
                "letterbox": f"{contract.pad_side}, pad {contract.pad_value}",
                "class_names": list(contract.class_names),
                "outputs": outputs,
            }

        r, c = described(ref.config, ref.contract), described(cand.config, cand.contract)
        for key in ("input", "input_size", "letterbox"):
            if r[key] != c[key]:
                problems.append(f"{key}: {c[key]} (serving: {r[key]})")
        if r["class_names"] != c["class_names"]:
            names_r, names_c = r["class_names"], c["class_names"]
            if len(names_r) != len(names_c):
                problems.append(f"{len(names_c)} classes (serving: {len(names_r)})")
            elif sorted(names_r) == sorted(names_c):
                problems.append(
                    "class order differs: "
                    + ", ".join(
                        f"{k}: {a!r} (serving {b!r})"
                        for k, (a, b) in enumerate(zip(names_c, names_r, strict=True))
                        if a != b
                    )[:300]
                )
            else:
                diff = [
                    f"{k}: {a!r} (serving {b!r})"
                    for k, (a, b) in enumerate(zip(names_c, names_r, strict=True))
                    if a != b
                ]
                problems.append("class names differ: " + ", ".join(diff[:10]))
        for name in sorted(set(r["outputs"]) | set(c["outputs"])):
            a, b = c["outputs"].get(name), r["outputs"].get(name)
            if a is None or b is None or a["data_type"] != b["data_type"]:
                problems.append(f"output {name}: {a} (serving: {b})")
            elif a["dims"] != b["dims"]:
                if (
                    self.policy.contract.allow_max_detections_change
                    and a["dims"][1:] == b["dims"][1:]
                ):
                    notes.append(
                        f"output {name} {a['dims']} (serving {b['dims']}): max_detections differs"
                    )
                else:
                    problems.append(f"output {name} dims {a['dims']} (serving: {b['dims']})")
        status = FAIL if problems else PASS
        reason = (
            "; ".join(problems)
            if problems
            else "the same contract" + (f" ({'; '.join(notes)})" if notes else "")
        )
        self.checks["contract"] = _check(status, reason, reference=r, candidate=c)

    def _latency_round(self, limit: int) -> tuple[list[float], list[float]]:
        """Round trips only, interleaved like the first pass, on the first `limit` frames."""
        assert self.reference is not None and self.candidate is not None
        times: dict[str, list[float]] = {"reference": [], "candidate": []}
        for index, _, image in self.source:
            if index >= limit:
                break
            order = (
                (self.reference, self.candidate)
                if index % 2 == 0
                else (self.candidate, self.reference)
            )
            for side in order:
                times[side.role].append(self._call(side, image)[0])
        return times["reference"], times["candidate"]

    def _latency(self) -> None:
        """p50/p95 of each model; a failure is measured again before it counts: on a shared
        host a burst of other work can land on one model's requests."""
        ref, cand = self.reference, self.candidate
        assert ref is not None and cand is not None
        policy = self.policy.latency

        def figures(values_ms: list[float], side: Side) -> dict:
            values = np.array(values_ms)
            stats = side.server_stats
            count = stats.get("success_count") or 0

            def server_ms(key: str) -> float | None:
                return round(stats[f"{key}_ns"] / count / 1e6, 2) if count else None

            return {
                "p50_ms": round(float(np.percentile(values, 50)), 2),
                "p95_ms": round(float(np.percentile(values, 95)), 2),
                "mean_ms": round(float(values.mean()), 2),
                "requests": len(values),
                # Triton's own statistics over the first pass (with any other traffic it
                # served): mean time per request in the model and in its queue.
                "server_compute_ms": server_ms("compute_infer"),
                "server_queue_ms": server_ms("queue"),
            }

        def judge(r: dict, c: dict) -> tuple[float | None, list[str]]:
            ratio = c["p95_ms"] / r["p95_ms"] if r["p95_ms"] else None
            problems = []
            limit = policy.max_p95_ratio
            if limit is not None and ratio is not None and ratio > limit:
                problems.append(f"p95 {ratio:.2f}x the serving model's (max {limit}x)")
            if policy.max_p95_ms is not None and c["p95_ms"] > policy.max_p95_ms:
                problems.append(f"p95 {c['p95_ms']} ms (max {policy.max_p95_ms} ms)")
            return ratio, problems

        r, c = figures(ref.latencies_ms, ref), figures(cand.latencies_ms, cand)
        ratio, problems = judge(r, c)
        extra: dict = {}
        if problems and policy.confirm_failures:
            self.say(f"latency: {'; '.join(problems)}: measuring again")
            first = {"reference": r, "candidate": c, "p95_ratio": ratio, "problems": problems}
            again = self._latency_round(min(len(ref.latencies_ms), 100))
            r, c = figures(again[0], ref), figures(again[1], cand)
            ratio, problems = judge(r, c)
            extra["first_round"] = first
        reason = "; ".join(problems) or (
            f"p95 {c['p95_ms']} ms vs {r['p95_ms']} ms serving ({ratio:.2f}x)"
            if ratio is not None
            else "measured"
        )
        if extra:
            reason += " (measured twice: the first round failed)"
        self.checks["latency"] = _check(
            FAIL if problems else PASS,
            reason,
            measured="per-frame gRPC round trip to Triton, batch 1, sequential, the two models "
            "interleaved frame by frame (letterboxing excluded)",
            reference=r,
            candidate=c,
            p95_ratio=None if ratio is None else round(ratio, 3),
            **extra,
        )

    def _memory(self) -> None:
        policy = self.policy.memory
        after, before = self.memory_after, self.memory_before
        if not after:
            self.checks["memory"] = _check(
                SKIPPED, "not measured: Triton runs on another host (or psutil is missing)"
            )
            return
        per_model = after.get("models", {})
        ref, cand = per_model.get(self.ref_name), per_model.get(self.cand_name)
        tree_delta = round(after["tree_rss_mb"] - before.get("tree_rss_mb", 0.0), 1)
        if ref and cand:
            method = (
                "USS (private memory) of the Python-backend stub process serving each "
                "model, per instance, after the frames"
            )
            ref_mb = ref["uss_mb"] / ref["processes"]
            cand_mb = cand["uss_mb"] / cand["processes"]
            details = {
                side: {k: round(v, 1) if isinstance(v, float) else v for k, v in entry.items()}
                for side, entry in (("reference", ref), ("candidate", cand))
            }
        else:
            method = "Triton's process-tree RSS growth from loading the candidate to the end"
            ref_mb, cand_mb, details = None, tree_delta, {}
        ratio = cand_mb / ref_mb if ref_mb else None
        problems = []
        if policy.max_ratio is not None and ratio is not None and ratio > policy.max_ratio:
            problems.append(f"{ratio:.2f}x the serving model's memory (max {policy.max_ratio}x)")
        if policy.max_mb is not None and cand_mb > policy.max_mb:
            problems.append(f"{cand_mb:.0f} MB (max {policy.max_mb} MB)")
        reason = "; ".join(problems) or (
            f"{cand_mb:.1f} MB vs {ref_mb:.1f} MB serving" if ref_mb else f"{cand_mb:.1f} MB"
        )
        self.checks["memory"] = _check(
            FAIL if problems else PASS,
            reason,
            measured=method,
            reference_mb=None if ref_mb is None else round(ref_mb, 1),
            candidate_mb=round(cand_mb, 1),
            ratio=None if ratio is None else round(ratio, 3),
            triton_tree_rss_growth_mb=tree_delta,
            per_model=details,
        )

    def _agreement(self) -> list[dict]:
        ref, cand = self.reference, self.candidate
        assert ref is not None and cand is not None
        policy = self.policy.agreement
        agreement = compare(
            list(zip(ref.detections, cand.detections, strict=True)),
            policy.iou,
            policy.serve_score,
            policy.margin,
        )
        self.agreement = agreement
        evidence = agreement.boxes.ref_sure
        thin = evidence < policy.min_reference_boxes
        thin_reason = (
            f"too little evidence: the serving model is sure (>= {policy.sure:g}) of "
            f"{evidence} boxes on these frames, fewer than {policy.min_reference_boxes}"
            ": give more frames, or frames with more objects"
        )
        basis = {
            "iou": policy.iou,
            "sure_score": round(policy.sure, 4),
            "present_score": round(policy.present, 4),
            "frames": agreement.frames,
        }

        ref_pf, cand_pf = agreement.served_per_frame
        ratio = agreement.detections_ratio
        low, high = policy.detections_ratio
        ok = ratio is not None and low <= ratio <= high
        self.checks["detections_per_frame"] = _check(
            PASS if ok else FAIL,
            f"{cand_pf:.2f} per frame vs {ref_pf:.2f} serving (ratio "
            f"{'n/a' if ratio is None else f'{ratio:.2f}'}; allowed {low}-{high})",
            reference=round(ref_pf, 3),
            candidate=round(cand_pf, 3),
            ratio=None if ratio is None else round(ratio, 3),
            score=policy.serve_score,
        )

        box_f1 = agreement.boxes.f1 or 0.0
        self.checks["boxes"] = _check(
            FAIL if thin or box_f1 < policy.min_box_f1 else PASS,
            thin_reason if thin else f"class-agnostic F1 {box_f1:.3f} (min {policy.min_box_f1})",
            **agreement.boxes.figures(),
            **basis,
        )

        names = ref.contract.class_names
        cand_names = cand.contract.class_names

        def name(k: int) -> str:
            return names[k] if 0 <= k < len(names) else str(k)

        rows, weak = [], []
        classes = (
            set(agreement.per_class)
            | set(agreement.served_reference)
            | set(agreement.served_candidate)
        )
        for k in sorted(
            classes,
            key=lambda k: -(agreement.per_class.get(k).ref_sure if k in agreement.per_class else 0),
        ):
            tally = agreement.per_class.get(k)
            figures = (
                tally.figures()
                if tally
                else {
                    "f1": None,
                    "precision": None,
                    "recall": None,
                    "reference_boxes": 0,
                    "candidate_boxes": 0,
                }
            )
            gated = figures["reference_boxes"] >= policy.min_class_support
            failed = gated and (figures["f1"] or 0.0) < policy.min_per_class_f1
            if failed:
                weak.append(f"{name(k)} {figures['f1'] or 0:.2f}")
            rows.append(
                {
                    "class_id": int(k),
                    "class": name(k),
                    "candidate_class": cand_names[k] if 0 <= k < len(cand_names) else str(k),
                    "support": figures["reference_boxes"],
                    "candidate_sure": figures["candidate_boxes"],
                    "precision": figures["precision"],
                    "recall": figures["recall"],
                    "f1": figures["f1"],
                    "served_reference": agreement.served_reference.get(k, 0),
                    "served_candidate": agreement.served_candidate.get(k, 0),
                    "gated": gated,
                    "status": FAIL if failed else (PASS if gated else SKIPPED),
                }
            )
        class_f1 = agreement.classes.f1 or 0.0
        problems = []
        if class_f1 < policy.min_class_f1:
            problems.append(f"class-aware F1 {class_f1:.3f} (min {policy.min_class_f1})")
        if weak:
            problems.append(f"per-class F1 below {policy.min_per_class_f1}: {', '.join(weak)}")
        self.checks["classes"] = _check(
            FAIL if thin or problems else PASS,
            thin_reason
            if thin
            else "; ".join(problems)
            or f"class-aware F1 {class_f1:.3f} (min {policy.min_class_f1}); every class with "
            f">= {policy.min_class_support} sure boxes >= {policy.min_per_class_f1}",
            **agreement.classes.figures(),
            **basis,
        )
        return rows

    def _map(self) -> None:
        if self.labels is None:
            return
        from steadyeye.validate.cocoeval import mean_ap

        ref, cand = self.reference, self.candidate
        assert ref is not None and cand is not None
        ids = list(self.source.image_ids[: len(ref.detections)])
        try:
            r = mean_ap(self.labels, ids, ref.detections, ref.contract.class_names)
            c = mean_ap(self.labels, ids, cand.detections, cand.contract.class_names)
        except ImportError as exc:
            self.checks["map"] = _check(SKIPPED, str(exc))
            return
        policy = self.policy.map
        drop = r["map"] - c["map"]
        problems = []
        if drop > policy.max_drop:
            problems.append(
                f"mAP {c['map']:.3f} vs {r['map']:.3f} serving: "
                f"{drop:.3f} lower (max drop {policy.max_drop})"
            )
        if policy.min_map is not None and c["map"] < policy.min_map:
            problems.append(f"mAP {c['map']:.3f} (min {policy.min_map})")
        self.checks["map"] = _check(
            FAIL if problems else PASS,
            "; ".join(problems) or f"mAP {c['map']:.3f} vs {r['map']:.3f} serving",
            reference=r,
            candidate=c,
            drop=round(drop, 4),
            images=len(ids),
            evaluator=r["evaluator"],
        )

    # -- all of it ----------------------------------------------------------------------------

    def run(self) -> dict:
        started = time.monotonic()
        per_class: list[dict] = []
        try:
            self._connect()
            assert self.server is not None
            self.reference = self._side("reference", self.ref_name, self.ref_version)
            try:
                serving = self._serve_candidate()
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
                self.reference = self._side("reference", self.ref_name, self.ref_version)
                serving = self._serve_candidate()
            if serving:
                try:
                    self.candidate = self._side("candidate", self.cand_name, "")
                    self._run_frames()
                    self.memory_after = memory(self.server.pid, [self.ref_name, self.cand_name])
                    self._latency()  # may measure again: both models still loaded
                except CandidateFailed as exc:
                    self.checks["import"] = _check(FAIL, str(exc))
                    serving = False
                finally:
                    if self.server.kind == "configured":
                        self.server.unload(self.cand_name)
            if serving:
                self._contract()
                self._memory()
                per_class = self._agreement()
                self._map()
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

    def _result(self, per_class: list[dict]) -> dict:
        ref = self.reference
        worst: list[int] = []
        if self.agreement is not None:
            scores = self.agreement.frame_disagreement
            # Consecutive video frames look alike: show frames at least 10 apart.
            gap = 10 if self.source.video is not None else 1
            for i in sorted(range(len(scores)), key=lambda i: -scores[i]):
                if scores[i] <= 0 or len(worst) == REPORT_FRAMES:
                    break
                if all(abs(i - j) >= gap for j in worst):
                    worst.append(i)
        order = [*CHECKS, *(name for name in self.checks if name not in CHECKS)]
        checks = {name: self.checks[name] for name in order if name in self.checks}
        failed = [name for name, check in checks.items() if check["status"] == FAIL]
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
                "name": self.ref_name,
                "version": (ref.served_version if ref else "") or self.ref_version,
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
            "worst_frames": [
                {"index": i, "disagreements": self.agreement.frame_disagreement[i]} for i in worst
            ],
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
