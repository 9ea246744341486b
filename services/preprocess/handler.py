from __future__ import annotations

from prometheus_client import Counter, Gauge

from services.contract import ModelContract
from services.core.claimcheck import PayloadStore
from services.core.handler import Handler
from services.core.messages import Output
from services.core.payload_keys import FRAMES, READY
from services.preprocess.decode import decode_image
from services.preprocess.letterbox import letterbox
from services.preprocess.quality import QualityMeter
from steadyeye.v1.frames_pb2 import Frame, ReadyFrame

quality_gauges = {
    name: Gauge(f"steadyeye_frame_{name}", f"Last frame's {name} (preprocess)", ["camera"])
    for name in ("brightness", "contrast", "sharpness")
}
frozen_frames = Counter("steadyeye_frozen_frames_total", "Frames identical to the last", ["camera"])


class PreprocessHandler(Handler):
    input_type = Frame

    def __init__(
        self,
        contract: ModelContract,
        payloads: PayloadStore,
        output_topic: str,
        max_image_pixels: int,
        frozen_threshold: float,
    ) -> None:
        self._contract = contract
        self._payloads = payloads
        self._topic = output_topic
        self._max_pixels = max_image_pixels
        self._quality = QualityMeter(frozen_threshold)

    def handle(self, message: Frame) -> list[Output]:
        ref = message.ref
        data = self._payloads.get(message.image, FRAMES.of(ref))
        image = decode_image(message, data, self._max_pixels)
        ref.height, ref.width = image.shape[:2]
        boxed = letterbox(image, self._contract)
        tensor = self._payloads.put(READY.key(ref.camera_id, ref.frame_id), boxed.image.data)
        quality = self._quality.measure(ref.camera_id, boxed.resized)
        for name, gauge in quality_gauges.items():
            gauge.labels(ref.camera_id).set(getattr(quality, name))
        if quality.frozen:
            frozen_frames.labels(ref.camera_id).inc()
        ready = ReadyFrame(
            ref=ref,
            model_name=self._contract.name,
            tensor=tensor,
            input_width=self._contract.input_width,
            input_height=self._contract.input_height,
            scale=boxed.scale,
            pad_x=boxed.pad_x,
            pad_y=boxed.pad_y,
            quality=quality,
        )
        return [Output(self._topic, ref.camera_id, ready)]
