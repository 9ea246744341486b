"""A camera's tile: its newest tracked frame whose pixels are still in the claim-check store,
annotated (steadyeye/annotate.py) and JPEG-encoded once per frame however many pages ask."""

from __future__ import annotations

import threading

import cv2
import numpy as np

from services.console.live import LiveView, TrackedFrame
from services.core.claimcheck import PayloadStore
from services.core.payload_keys import frame_key
from steadyeye.annotate import Overlay, annotate

JPEG_QUALITY = 75
PLACEHOLDER_SIZE = (360, 640)


def decode_frame(data: bytes | memoryview, width: int, height: int) -> np.ndarray | None:
    """Ingest parks raw BGR (its size says so) or the camera's own JPEG."""
    if width and height and len(data) == width * height * 3:
        return np.frombuffer(data, np.uint8).reshape(height, width, 3)
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)


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
        return decode_frame(data, frame.width, frame.height) if data else None
