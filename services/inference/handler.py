from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext, suppress

import numpy as np
import tritonclient.grpc as triton
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from prometheus_client import Counter, Histogram
from tritonclient.utils import InferenceServerException

from services.contract import ModelContract
from services.core import tracing
from services.core.claimcheck import PayloadStore
from services.core.errors import PoisonMessage, TransientError
from services.core.handler import Handler, Incoming, Result
from services.core.health import Health as ServiceHealth
from services.core.messages import Output
from services.core.metrics import LATENCY_BUCKETS
from services.core.payload_keys import READY
from services.inference.boxes import to_detections
from services.inference.faults import TierFault, fault_of, tier_fault
from services.inference.router import REASON_LABELS, REASONS, Router
from services.inference.settings import InferenceSettings
from services.inference.shm import SharedMemoryInputs
from services.inference.tiers import Tier
from services.inference.tiers_file import HealthRules
from services.inference.versions import Versions
from services.rollout.state import RolloutState
from services.rollout.usage import Usage
from steadyeye.v1.detections_pb2 import Detections, ModelRef
from steadyeye.v1.frames_pb2 import ReadyFrame

log = logging.getLogger(__name__)
OUTPUTS = ("boxes", "scores", "classes", "count")

detections_total = Counter(
    "steadyeye_detections_total", "Detections published", ["model", "class_name"]
)
detection_confidence = Histogram(
    "steadyeye_detection_confidence",
    "Scores of published detections",
    ["model"],
    buckets=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
)
triton_seconds = Histogram(
    "steadyeye_triton_request_duration_seconds",
    "Triton inference request latency, retries included",
    ["model"],
    buckets=LATENCY_BUCKETS,
)
frames_by_tier = Counter(
    "steadyeye_inference_frames_by_tier_total",
    "Frames published per camera and tier (with a tiers file); degraded_reason is empty on "
    "the primary",
    ["camera", "tier", "degraded_reason"],
)
shadow_total = Counter(
    "steadyeye_shadow_requests_total",
    "Shadow requests to a rollout's candidate version, by outcome (ok, failed)",
    ["model", "version", "outcome"],
)


class TierFailed(Exception):
    """A request to a tier with a tier after it failed for the tier's own reason: the frames go
    on to the next tier at once (no retry: the next tier is the plan for a failing one)."""

    def __init__(self, fault: TierFault) -> None:
        super().__init__(fault)
        self.fault = fault


class InferenceHandler(Handler):
    input_type = ReadyFrame

    def __init__(
        self,
        tiers: list[Tier],
        contract: ModelContract,
        payloads: PayloadStore,
        output_topic: str,
        settings: InferenceSettings,
        versions: Versions | None = None,
        shadow_topic: str | None = None,
        rules: HealthRules | None = None,
        serving_topic: str | None = None,
        health: ServiceHealth | None = None,
    ) -> None:
        """tiers: the primary first (services/inference/tiers.py); the rollout state applies to
        the primary's model. versions: the rollout state to follow; None: always the highest
        version Triton serves (asked once). shadow_topic: where the version that does not go
        downstream answers the compared frames (a shadow rollout's candidate, a canary's
        serving version). serving_topic: where tier switches are announced; health: where
        /readyz notes them."""
        self._tiers = tiers
        self._router = Router(tiers, rules or HealthRules(), contract.name, health)
        self._serving_topic = serving_topic
        self._versions = versions
        # Requests per version, for the rollout controller (sent with the versions' heartbeat).
        self._usage = versions.usage if versions is not None else Usage()
        self._fixed: RolloutState | None = None
        self._shadow_topic = shadow_topic
        self._contract = contract
        self._payloads = payloads
        self._topic = output_topic
        self._settings = settings
        self._pool = ThreadPoolExecutor(settings.max_in_flight, thread_name_prefix="infer")
        self._outputs = [triton.InferRequestedOutput(name) for name in OUTPUTS]
        self._tracer = trace.get_tracer("steadyeye.inference")
        self._down = threading.Event()
        self._frame_shape = (contract.input_height, contract.input_width, 3)
        self._frame_bytes = int(np.prod(self._frame_shape))
        # A model without a batch dimension would need another input shape; ours all have one.
        self._batch = max(1, min(settings.max_batch, contract.max_batch_size))
        for tier in tiers if settings.shared_memory else ():
            size = self._batch * self._frame_bytes
            tier.shm = SharedMemoryInputs(tier.client, settings.max_in_flight, size)
        # One probe in flight per left tier; never on the pool that serves frames.
        self._probe_pool = ThreadPoolExecutor(1, thread_name_prefix="probe")
        self._last_tensor: np.ndarray | None = None  # a real frame for probes when idle

    def handle(self, message: ReadyFrame) -> list[Output]:
        [result] = self.handle_batch([Incoming(message, trace.get_current_span())])
        if isinstance(result, Exception):
            raise result
        return result

    def handle_batch(self, items: list[Incoming]) -> list[Result]:
        """The poll's frames in requests of up to `batch` frames, all in flight at once
        (bounded by the pool); their tensors come from Redis in one round trip."""
        self._down.clear()
        for item in items:
            item.span.set_attribute("steadyeye.batch_size", len(items))
        try:
            inputs = self._inputs([item.message for item in items])
        except TransientError as exc:
            return [exc] * len(items)
        results: list[Result | None] = [
            error if isinstance(error, PoisonMessage) else None for error in inputs
        ]
        ready = [(i, t) for i, t in enumerate(inputs) if not isinstance(t, PoisonMessage)]
        if ready:
            self._last_tensor = ready[-1][1]
            self._probe()
        # One state for the whole poll (Triton is asked only when there is work).
        try:
            state = self._state() if ready else None
        except InferenceServerException as exc:  # no version known yet: Triton is down
            return [TransientError(f"Triton unavailable: {exc}")] * len(items)
        chunks = self._chunks(items, ready, state) if state else []
        futures = [
            self._pool.submit(
                self._infer,
                [items[i] for i, _ in chunk],
                [t for _, t in chunk],
                tier,
                version,
                state,
                self._router.left_because(tier),
            )
            for tier, version, chunk in chunks
        ]
        for (_, _, chunk), future in zip(chunks, futures, strict=True):
            try:
                outcome: list[Result] = future.result()
            except Exception as exc:
                outcome = [exc] * len(chunk)
            for (i, _), result in zip(chunk, outcome, strict=True):
                results[i] = result
        return results  # type: ignore[return-value]  # every slot is filled above

    def _chunks(
        self, items: list[Incoming], ready: list[tuple[int, np.ndarray]], state: RolloutState
    ) -> list[tuple[int, str, list[tuple[int, np.ndarray]]]]:
        """Requests of up to `batch` frames, each naming one tier and version: a canary or a
        tier switch under way splits a poll."""
        by_target: dict[tuple[int, str], list[tuple[int, np.ndarray]]] = {}
        for i, tensor in ready:
            camera = items[i].message.ref.camera_id
            tier = self._router.tier_for(camera)
            version = state.version_for(camera) if tier == 0 else self._version_of(tier, state)
            by_target.setdefault((tier, version), []).append((i, tensor))
        return [
            (tier, version, group[k : k + self._batch])
            for (tier, version), group in by_target.items()
            for k in range(0, len(group), self._batch)
        ]

    def _version_of(self, tier: int, state: RolloutState) -> str:
        """The primary's follows the rollout; a fallback's is the highest its Triton serves."""
        return state.serving if tier == 0 else self._tiers[tier].version_served()

    def _state(self) -> RolloutState:
        if self._versions is not None:
            return self._versions.state
        if self._fixed is None:
            self._fixed = RolloutState(self._contract.name, self._tiers[0].version_served())
        return self._fixed

    def _infer(
        self,
        items: list[Incoming],
        tensors: list[np.ndarray],
        tier: int,
        version: str,
        state: RolloutState,
        reason: TierFault | None = None,
    ) -> list[Result]:
        """reason: why these frames are not on the primary (None on it)."""
        last = tier == self._router.last
        if last and self._down.is_set():
            raise TransientError("Triton unavailable (an earlier request of this batch failed)")
        try:
            result = self._request(items, tensors, tier, version)
        except TierFailed as failed:
            # Tier t answered nothing, so the next one's answer is the only one downstream.
            following = tier + 1
            return self._infer(items, tensors, following, self._version_of(following, state),
                               state, reason or failed.fault)  # fmt: skip
        except PoisonMessage:
            if len(items) == 1:
                raise
            # Triton refused the batch: frame by frame, so only the bad one is dead-lettered.
            outcome: list[Result] = []
            for item, tensor in zip(items, tensors, strict=True):
                try:
                    outcome += self._infer([item], [tensor], tier, version, state, reason)
                except Exception as exc:
                    outcome.append(exc)
            return outcome
        outcome = self._outputs_of(result, items, self._topic, tier, reason)
        if self._shadow_topic is not None and tier == 0:  # a degraded frame has no comparison
            for k, shadow in self._shadow(items, tensors, state).items():
                outcome[k] = [*outcome[k], *shadow]  # type: ignore[misc]  # lists of Output
        return outcome

    def _outputs_of(
        self,
        result: triton.InferResult,
        items: list[Incoming],
        topic: str,
        tier: int = 0,
        reason: TierFault | None = None,
    ) -> list[Result]:
        version = result.get_response().model_version
        boxes, scores, classes, count = (result.as_numpy(name) for name in OUTPUTS)
        counts = count.reshape(len(items), -1)[:, 0]
        return [
            self._output(
                item, version, boxes[k], scores[k], classes[k], int(counts[k]), topic, tier, reason
            )
            for k, item in enumerate(items)
        ]

    def _shadow(
        self, items: list[Incoming], tensors: list[np.ndarray], state: RolloutState
    ) -> dict[int, list[Output]]:
        """The other version's outputs for the sampled frames, for the shadow topic only (the
        candidate's in shadow mode, the serving version's on canary cameras). One try, no
        retry: a failing version costs serving at most one request timeout, never a frame."""
        wanted = [
            (k, state.shadow_version(item.message.ref.camera_id, item.message.ref.frame_id))
            for k, item in enumerate(items)
        ]
        sampled = [(k, version) for k, version in wanted if version is not None]
        if not sampled:
            return {}
        # One chunk's frames share their downstream version, so their other version too.
        name, version = self._contract.name, sampled[0][1]
        picked = [k for k, _ in sampled]
        started = time.perf_counter()
        try:
            result = self._call(self._tiers[0], [tensors[k] for k in picked], version)
            outputs = self._outputs_of(result, [items[k] for k in picked], self._shadow_topic)  # type: ignore[arg-type]
        except Exception as exc:  # whatever the other version does, serving goes on
            self._usage.observe(version, 0.0, ok=False, frames=len(picked))
            shadow_total.labels(name, version, "failed").inc(len(picked))
            log.warning("shadow request to %s version %s failed: %s", name, version, exc)
            return {}
        self._usage.observe(version, time.perf_counter() - started, ok=True, frames=len(picked))
        shadow_total.labels(name, version, "ok").inc(len(picked))
        return dict(zip(picked, outputs, strict=True))  # type: ignore[arg-type]

    def _output(
        self,
        item: Incoming,
        version: str,
        boxes: np.ndarray,
        scores: np.ndarray,
        classes: np.ndarray,
        count: int,
        topic: str,
        tier: int = 0,
        reason: TierFault | None = None,
    ) -> list[Output]:
        frame, name, s = item.message, self._tiers[tier].model, self._settings
        detections = to_detections(frame, boxes, scores, classes, count, self._contract,
                                   s.min_score)  # fmt: skip
        candidates = to_detections(frame, boxes, scores, classes, count, self._contract,
                                   s.candidate_min_score, below=s.min_score)  # fmt: skip
        if topic != self._topic:  # shadow outputs: no metrics or span of the served frame
            shadow = Detections(ref=frame.ref, model=ModelRef(name=name, version=version),
                                detections=detections, quality=frame.quality,
                                candidates=candidates)  # fmt: skip
            return [Output(topic, frame.ref.camera_id, shadow)]
        item.span.set_attribute("steadyeye.detection_count", len(detections))
        for detection in detections:
            detections_total.labels(name, detection.class_name).inc()
            detection_confidence.labels(name).observe(detection.score)
        out = Detections(
            ref=frame.ref,
            model=ModelRef(name=name, version=version),
            detections=detections,
            quality=frame.quality,
            candidates=candidates,
        )
        if tier_name := self._tiers[tier].name:  # a tiers file: say which tier, and why
            label = REASON_LABELS[reason] if tier and reason else ""
            out.tier, out.degraded = tier_name, tier > 0
            out.degraded_reason = REASONS[reason] if tier and reason else 0
            frames_by_tier.labels(frame.ref.camera_id, tier_name, label).inc()
            item.span.set_attributes({"steadyeye.tier": tier_name,
                                      "steadyeye.degraded": tier > 0,
                                      "steadyeye.degraded_reason": label})  # fmt: skip
        return [Output(topic, frame.ref.camera_id, out)]

    def _inputs(self, frames: list[ReadyFrame]) -> list[np.ndarray | PoisonMessage]:
        """Each frame's model input, or why it has none; the tensors of all frames whose
        geometry fits the model come from Redis in one round trip."""
        results: list[np.ndarray | PoisonMessage | None] = [self._geometry_error(f) for f in frames]
        wanted = [i for i, error in enumerate(results) if error is None]
        tensors = self._payloads.get_many(
            [(frames[i].tensor, READY.of(frames[i].ref)) for i in wanted]
        )
        for i, data in zip(wanted, tensors, strict=True):
            results[i] = self._tensor(data)
        return results  # type: ignore[return-value]  # no None is left

    def _geometry_error(self, frame: ReadyFrame) -> PoisonMessage | None:
        if (frame.input_height, frame.input_width) != self._frame_shape[:2]:
            return PoisonMessage(
                f"frame letterboxed to {frame.input_width}x{frame.input_height}, model "
                f"{self._contract.name} takes {self._frame_shape[1]}x{self._frame_shape[0]}"
            )
        geometry = (frame.scale, frame.pad_x, frame.pad_y)
        if not (np.isfinite(geometry).all() and frame.scale > 0):
            return PoisonMessage(f"letterbox scale/pad_x/pad_y {geometry} cannot map boxes back")
        return None

    def _tensor(self, data: bytes | PoisonMessage) -> np.ndarray | PoisonMessage:
        if isinstance(data, PoisonMessage):
            return data
        if len(data) != self._frame_bytes:
            height, width, _ = self._frame_shape
            return PoisonMessage(
                f"tensor has {len(data)} bytes, {self._contract.name} needs "
                f"{self._frame_bytes} ({width}x{height}x3 uint8)"
            )
        return np.frombuffer(data, np.uint8).reshape(self._frame_shape)

    def _call(self, tier: Tier, tensors: list[np.ndarray], version: str) -> triton.InferResult:
        """One request naming its version; trace context in the headers."""
        shape = [len(tensors), *self._frame_shape]
        inputs = [triton.InferInput(self._contract.input_name, shape, "UINT8")]
        if not tier.shm:
            inputs[0].set_data_from_numpy(np.stack(tensors))
        with tier.shm.input(inputs[0], tensors) if tier.shm else nullcontext():
            return tier.client.infer(
                tier.model,
                inputs,
                model_version=version,
                outputs=self._outputs,
                client_timeout=tier.timeout_s,
                headers=dict(tracing.inject([])),
            )

    def _request(
        self, items: list[Incoming], tensors: list[np.ndarray], tier: int, version: str
    ) -> triton.InferResult:
        target, last = self._tiers[tier], tier == self._router.last
        name = target.model
        # One request, several frames' traces: the span is the first frame's child and links
        # the others (OpenTelemetry's way to show batch processing).
        with self._tracer.start_as_current_span(
            f"triton infer {name}",
            context=trace.set_span_in_context(items[0].span),
            kind=SpanKind.CLIENT,
            links=[trace.Link(item.span.get_span_context()) for item in items[1:]],
            attributes={
                "rpc.system": "grpc",
                "steadyeye.model.name": name,
                "steadyeye.triton_batch_size": len(items),
                **({"steadyeye.tier": target.name} if target.name else {}),
            },
        ) as span:
            started = time.perf_counter()
            attempt = 0
            while True:
                try:
                    result = self._call(target, tensors, version)
                    break
                except InferenceServerException as exc:
                    if not last:
                        self._fail_over(tier, version, exc, len(items))
                    if target.shm and "shared memory" in str(exc).lower():
                        self._reregister(target, exc)  # Triton restarted and forgot our regions
                    elif fault_of(exc) == "frame":
                        self._usage.observe(version, 0.0, ok=False, frames=len(items))
                        raise PoisonMessage(f"Triton rejected the request: {exc}") from exc
                    if attempt == self._settings.retries or self._down.is_set():
                        self._down.set()
                        self._usage.observe(version, 0.0, ok=False, frames=len(items))
                        raise TransientError(f"Triton unavailable: {exc}") from exc
                time.sleep(self._settings.retry_backoff_s * 2**attempt)
                attempt += 1
            elapsed = time.perf_counter() - started
            triton_seconds.labels(name).observe(elapsed)
            self._router.observe(tier, elapsed, None)
            if tier == 0:  # the rollout's figures are the primary model's
                self._usage.observe(version, elapsed, ok=True, frames=len(items))
            span.set_attribute("steadyeye.model.version", result.get_response().model_version)
            return result

    def _fail_over(self, tier: int, version: str, exc: InferenceServerException, frames: int):
        """A failed request to a tier with a tier after it: the frame's own fault dead-letters
        it as on one tier; any other is the tier's, and its frames go on to the next tier."""
        if tier == 0:
            self._usage.observe(version, 0.0, ok=False, frames=frames)
        if tier_fault(exc) is None and fault_of(exc) == "frame":
            raise PoisonMessage(f"Triton rejected the request: {exc}") from exc
        fault = self._fault_of_tier(tier, exc)
        self._router.observe(tier, None, fault, str(exc))
        raise TierFailed(fault) from exc

    def _fault_of_tier(self, tier: int, exc: InferenceServerException) -> TierFault:
        """Why a request to the tier failed; a server fault we cannot name is "unavailable". A
        restarted Triton forgot our shared-memory regions: registered again for the next ones."""
        target = self._tiers[tier]
        if target.shm and "shared memory" in str(exc).lower():
            with suppress(InferenceServerException):
                target.shm.register()
        return tier_fault(exc) or "unavailable"

    def _probe(self) -> None:
        """A request to each tier that was left and is due a probe, with a real frame; the
        answer is never published, only how long it took (or how it failed)."""
        if self._last_tensor is None:
            return
        for tier in self._router.probes_due():
            self._probe_pool.submit(self._probe_one, tier, self._last_tensor)

    def _probe_one(self, tier: int, tensor: np.ndarray) -> None:
        started = time.perf_counter()
        try:
            version = self._version_of(tier, self._state())
            self._call(self._tiers[tier], [tensor], version)
        except InferenceServerException as exc:
            self._router.probe_done(tier, None, self._fault_of_tier(tier, exc), str(exc))
            return
        except Exception as exc:  # never let a probe thread die silently
            log.warning("probe of tier %s failed: %s", self._tiers[tier].name, exc)
            self._router.probe_done(tier, None, "unavailable", str(exc))
            return
        self._router.probe_done(tier, time.perf_counter() - started, None)

    def tick(self) -> list[Output]:
        if self._versions is not None:
            self._versions.refresh()
        self._probe()
        if self._serving_topic is None:
            return []
        return [Output(self._serving_topic, e.model, e) for e in self._router.events()]

    def after_commit(self, committed: list[ReadyFrame]) -> None:
        # Only we read them; a dead-lettered frame is never among `committed`.
        self._payloads.discard([(frame.tensor, READY.of(frame.ref)) for frame in committed])

    def _reregister(self, tier: Tier, cause: InferenceServerException) -> None:
        assert tier.shm is not None
        try:
            tier.shm.register()
        except InferenceServerException as exc:
            raise TransientError(f"Triton unavailable: {cause}") from exc

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self._probe_pool.shutdown(wait=True)
        for tier in self._tiers:
            tier.close()
