"""A frame's stored pixels -> a BGR image of the size its record states, and back to JPEG.

Ingest stores a frame as raw BGR24 (`width*height*3` bytes) or as the encoded image it read
(JPEG, PNG, BMP, WebP). The size check matters: the boxes are in the record's pixels.
"""

from __future__ import annotations

import cv2
import numpy as np

from services.core.claimcheck import Data
from services.core.errors import PoisonMessage
from services.preprocess.decode import declared_size
from steadyeye.v1.common_pb2 import FrameRef


def decode_frame(data: Data, ref: FrameRef, max_pixels: int) -> np.ndarray:
    """A writable BGR copy (privacy masks are drawn into it)."""
    width, height = ref.width, ref.height
    if not width or not height:
        raise PoisonMessage(f"frame {ref.frame_id} has no size in its record ({width}x{height})")
    if width * height > max_pixels:
        raise PoisonMessage(f"frame {width}x{height} exceeds {max_pixels} pixels")
    if len(data) == width * height * 3:
        return np.frombuffer(data, np.uint8).reshape(height, width, 3).copy()
    size = declared_size(data)  # type: ignore[arg-type]  # an mmap slices and finds like bytes
    if size is None:
        raise PoisonMessage(
            f"stored frame ({len(data)} bytes) is neither {width}x{height} raw BGR24 "
            "nor a JPEG, PNG, BMP or WebP"
        )
    if size[0] * size[1] > max_pixels:  # refused before OpenCV allocates (decompression bombs)
        raise PoisonMessage(f"stored image declares {size[0]}x{size[1]}, over {max_pixels} pixels")
    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    except cv2.error as exc:
        raise PoisonMessage(f"cannot decode the stored frame: {str(exc).strip()}") from None
    if image is None:
        raise PoisonMessage(f"cannot decode the stored frame ({len(data)} bytes): corrupt")
    if image.shape[:2] != (height, width):
        raise PoisonMessage(
            f"stored frame is {image.shape[1]}x{image.shape[0]}, its record says {width}x{height}"
        )
    return image


def encode_jpeg(image: np.ndarray, quality: int) -> bytes:
    ok, buffer = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError(f"cannot encode a {image.shape} image as JPEG")
    return buffer.tobytes()
