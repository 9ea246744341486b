from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext

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
from services.core.messages import Output
from services.core.metrics import LATENCY_BUCKETS
from services.inference.boxes import to_detections
from services.inference.settings import InferenceSettings
from services.inference.shm import SharedMemoryInputs
from steadyeye.v1.detections_pb2 import Detections, ModelRef
from steadyeye.v1.frames_pb2 import ReadyFrame

# Failures of the server, not of the frame: retried, never dead-lettered. NOT_FOUND is a model
# still loading (or being replaced) after a Triton restart.
_TRANSIENT_STATUS = {
    "UNAVAILABLE",
    "DEADLINE_EXCEEDED",
    "RESOURCE_EXHAUSTED",
    "CANCELLED",
    "NOT_FOUND",
}
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


class InferenceHandler(Handler):
    input_type = ReadyFrame

    def __init__(
        self,
        client: triton.InferenceServerClient,
        contract: ModelContract,
        payloads: PayloadStore,
        output_topic: str,
        settings: InferenceSettings,
    ) -> None:
        self._client = client
        self._contract = contract
        self._payloads = payloads
        self._topic = output_topic
        self._settings = settings
        self._pool = ThreadPoolExecutor(settings.max_in_flight, thread_name_prefix="infer")
        self._outputs = [triton.InferRequestedOutput(name) for name in OUTPUTS]
        self._tracer = trace.get_tracer("steadyeye.inference")
        self._down = threading.Event()
        self._shape = (1, contract.input_height, contract.input_width, 3)
        self._shm = (
            SharedMemoryInputs(client, settings.max_in_flight, int(np.prod(self._shape)))
            if settings.shared_memory
            else None
        )

    def handle(self, message: ReadyFrame) -> list[Output]:
        return self._infer(message)

    def handle_batch(self, items: list[Incoming]) -> list[Result]:
        """All items in flight at once (bounded by the pool) so Triton can batch them."""
        self._down.clear()
        for item in items:
            item.span.set_attribute("steadyeye.batch_size", len(items))
        futures = [self._pool.submit(self._traced, item) for item in items]
        results: list[Result] = []
        for future in futures:
            try:
                results.append(future.result())
            except Exception as exc:
                results.append(exc)
        return results

    def _traced(self, item: Incoming) -> list[Output]:
        with trace.use_span(item.span, end_on_exit=False):
            return self._infer(item.message)

    def _infer(self, frame: ReadyFrame) -> list[Output]:
        if self._down.is_set():
            raise TransientError("Triton unavailable (an earlier request of this batch failed)")
        tensor = self._tensor(frame)
        result = self._request(tensor)
        response = result.get_response()
        detections = to_detections(
            frame,
            result.as_numpy("boxes")[0],
            result.as_numpy("scores")[0],
            result.as_numpy("classes")[0],
            int(result.as_numpy("count").reshape(-1)[0]),
            self._contract,
            self._settings.min_score,
        )
        trace.get_current_span().set_attribute("steadyeye.detection_count", len(detections))
        for detection in detections:
            detections_total.labels(self._contract.name, detection.class_name).inc()
            detection_confidence.labels(self._contract.name).observe(detection.score)
        out = Detections(
            ref=frame.ref,
            model=ModelRef(name=response.model_name, version=response.model_version),
            detections=detections,
            quality=frame.quality,
        )
        return [Output(self._topic, frame.ref.camera_id, out)]

    def _tensor(self, frame: ReadyFrame) -> np.ndarray:
        expected = (frame.input_height, frame.input_width)
        if expected != self._shape[1:3]:
            raise PoisonMessage(
                f"frame letterboxed to {frame.input_width}x{frame.input_height}, model "
                f"{self._contract.name} takes {self._shape[2]}x{self._shape[1]}"
            )
        geometry = (frame.scale, frame.pad_x, frame.pad_y)
        if not (np.isfinite(geometry).all() and frame.scale > 0):
            raise PoisonMessage(f"letterbox scale/pad_x/pad_y {geometry} cannot map boxes back")
        data = self._payloads.get(frame.tensor)
        if len(data) != np.prod(self._shape):
            raise PoisonMessage(
                f"tensor has {len(data)} bytes, {self._contract.name} needs "
                f"{int(np.prod(self._shape))} ({self._shape[2]}x{self._shape[1]}x3 uint8)"
            )
        return np.frombuffer(data, np.uint8).reshape(self._shape)

    def _request(self, tensor: np.ndarray) -> triton.InferResult:
        inputs = [triton.InferInput(self._contract.input_name, list(self._shape), "UINT8")]
        if not self._shm:
            inputs[0].set_data_from_numpy(tensor)
        name = self._contract.name
        with self._tracer.start_as_current_span(
            f"triton infer {name}",
            kind=SpanKind.CLIENT,
            attributes={"rpc.system": "grpc", "steadyeye.model.name": name},
        ) as span:
            started = time.perf_counter()
            attempt = 0
            while True:
                try:
                    with self._shm.input(inputs[0], tensor) if self._shm else nullcontext():
                        result = self._client.infer(
                            name,
                            inputs,
                            outputs=self._outputs,
                            client_timeout=self._settings.request_timeout_s,
                            headers=dict(tracing.inject([])),
                        )
                    break
                except InferenceServerException as exc:
                    status = (exc.status() or "").removeprefix("StatusCode.")
                    if self._shm and "shared memory" in str(exc).lower():
                        self._reregister(exc)  # Triton restarted and forgot our regions
                    elif status not in _TRANSIENT_STATUS and "unavailable" not in str(exc).lower():
                        raise PoisonMessage(f"Triton rejected the request: {exc}") from exc
                    if attempt == self._settings.retries or self._down.is_set():
                        self._down.set()
                        raise TransientError(f"Triton unavailable: {exc}") from exc
                time.sleep(self._settings.retry_backoff_s * 2**attempt)
                attempt += 1
            triton_seconds.labels(name).observe(time.perf_counter() - started)
            span.set_attribute("steadyeye.model.version", result.get_response().model_version)
            return result

    def after_commit(self, committed: list[ReadyFrame]) -> None:
        self._payloads.discard([frame.tensor for frame in committed])  # only we read them

    def _reregister(self, cause: InferenceServerException) -> None:
        assert self._shm is not None
        try:
            self._shm.register()
        except InferenceServerException as exc:
            raise TransientError(f"Triton unavailable: {cause}") from exc

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        if self._shm:
            self._shm.close()
        self._client.close()
