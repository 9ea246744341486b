"""A camera's tile: its newest tracked frame whose pixels are still in the claim-check store,
decoded as capture decodes them (sizes checked before anything is allocated), annotated
(steadyeye/annotate.py) and JPEG-encoded once per frame however many pages ask."""

from __future__ import annotations

import logging
import threading

import cv2
import numpy as np

from services.capture.pixels import decode_frame
from services.console.live import LiveView, TrackedFrame
from services.core.claimcheck import PayloadStore
from services.core.errors import PoisonMessage
from services.core.payload_keys import frame_key
from steadyeye.annotate import Overlay, annotate
from steadyeye.v1.common_pb2 import FrameRef

log = logging.getLogger(__name__)
JPEG_QUALITY = 75
MAX_PIXELS = 8192 * 8192
PLACEHOLDER_SIZE = (360, 640)


def placeholder(text: str, shape: tuple[int, int] = PLACEHOLDER_SIZE) -> bytes:
    image = np.full((*shape, 3), 40, np.uint8)
    cv2.putText(image, text, (16, shape[0] // 2), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (220,) * 3, 1)
    return cv2.imencode(".jpg", image)[1].tobytes()


class Tiles:
    def __init__(self, view: LiveView, payloads: PayloadStore, overlays: dict[str, Overlay]):
        self._view = view
        self._payloads = payloads
        self._overlays = overlays
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[int, bytes]] = {}  # camera -> (frame id, JPEG)

    def jpeg(self, camera_id: str) -> tuple[int | None, bytes]:
        """(frame id, JPEG) of the camera's newest frame with pixels, or a placeholder."""
        frames = self._view.recent_frames(camera_id)
        if not frames:
            return None, placeholder(f"{camera_id}: no frames yet")
        with self._lock:
            cached = self._cache.get(camera_id)
        for frame in frames:
            if cached and cached[0] == frame.frame_id:
                return cached
            image = self._pixels(camera_id, frame)
            if image is None:
                continue  # inline in Kafka, or expired: an older one may still be there
            overlay = self._overlays.get(camera_id, Overlay())
            data = cv2.imencode(
                ".jpg",
                annotate(image, frame.boxes, overlay),
                [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY],
            )[1].tobytes()
            with self._lock:
                self._cache[camera_id] = (frame.frame_id, data)
            return frame.frame_id, data
        newest = frames[0]
        shape = (newest.height, newest.width) if newest.width else PLACEHOLDER_SIZE
        return newest.frame_id, placeholder(
            f"frame {newest.frame_id}: pixels not in the claim-check store", shape
        )

    def _pixels(self, camera_id: str, frame: TrackedFrame) -> np.ndarray | None:
        data = self._payloads.find(frame_key(camera_id, frame.frame_id))
        if not data:
            return None
        ref = FrameRef(frame_id=frame.frame_id, width=frame.width, height=frame.height)
        try:
            return decode_frame(data, ref, MAX_PIXELS)
        except PoisonMessage as exc:  # stored pixels are input too: a bomb is refused, not drawn
            log.warning("camera %s: %s", camera_id, exc)
            return None
