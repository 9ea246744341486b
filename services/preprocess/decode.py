"""Frame payload -> BGR image, with every way a payload can be bad turned into a clear reason."""

from __future__ import annotations

import cv2
import numpy as np

from services.core.errors import PoisonMessage
from steadyeye.v1.frames_pb2 import Frame, ImageEncoding


def decode_image(frame: Frame, data: bytes, max_pixels: int) -> np.ndarray:
    if not data:
        raise PoisonMessage("empty image payload")
    if frame.encoding == ImageEncoding.IMAGE_ENCODING_BGR24:
        width, height = frame.ref.width, frame.ref.height
        if width * height > max_pixels:
            raise PoisonMessage(f"raw frame {width}x{height} exceeds {max_pixels} pixels")
        if width == 0 or height == 0 or len(data) != width * height * 3:
            raise PoisonMessage(
                f"raw BGR24 frame has {len(data)} bytes; {width}x{height}x3 needs "
                f"{width * height * 3}"
            )
        return np.frombuffer(data, np.uint8).reshape(height, width, 3)
    if frame.encoding == ImageEncoding.IMAGE_ENCODING_JPEG:
        # OpenCV refuses images above OPENCV_IO_MAX_IMAGE_PIXELS before allocating (bombs).
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if image is None:
            raise PoisonMessage(
                f"cannot decode image ({len(data)} bytes, starts {data[:4].hex()}): corrupt, "
                f"truncated or not an image"
            )
        return image
    name = ImageEncoding.Name(frame.encoding) if frame.encoding in ImageEncoding.values() else ""
    raise PoisonMessage(f"unsupported image encoding {name or frame.encoding}")
