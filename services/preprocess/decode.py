"""Frame payload -> BGR image, with every way a payload can be bad turned into a clear reason."""

from __future__ import annotations

import struct

import cv2
import numpy as np

from services.core.errors import PoisonMessage
from steadyeye.v1.frames_pb2 import Frame, ImageEncoding

# JPEG start-of-frame markers (all but DHT C4, JPG C8 and DAC CC): they carry the image size.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Markers without a length field: TEM, RST0-7, SOI, EOI.
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xDA)})


def declared_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) as the header of a JPEG, PNG, BMP or WebP says, read without decoding;
    None for any other format or a header too broken to say."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR" and len(data) >= 24:
        return struct.unpack(">II", data[16:24])
    if data[:2] == b"BM" and len(data) >= 26:
        if struct.unpack("<I", data[14:18])[0] == 12:  # OS/2 BITMAPCOREHEADER: 16-bit sizes
            return struct.unpack("<HH", data[18:22])
        width, height = struct.unpack("<ii", data[18:26])
        return abs(width), abs(height)  # a negative height means top-down rows
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP" and len(data) >= 30:
        chunk = data[12:16]
        if chunk == b"VP8X":  # extended: 24-bit canvas size minus one
            width, height = (int.from_bytes(data[i : i + 3], "little") for i in (24, 27))
            return width + 1, height + 1
        if chunk == b"VP8L":  # lossless: 14-bit sizes minus one, after a 0x2f signature
            bits = int.from_bytes(data[21:25], "little")
            return 1 + (bits & 0x3FFF), 1 + (bits >> 14 & 0x3FFF)
        if chunk == b"VP8 ":  # lossy: 14-bit sizes after the 0x9d012a start code
            width, height = struct.unpack("<HH", data[26:30])
            return width & 0x3FFF, height & 0x3FFF
        return None
    if data[:2] == b"\xff\xd8":
        return _jpeg_size(data)
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """The first start-of-frame's size, found the way libjpeg finds markers: bytes before a
    0xFF are skipped, not fatal, so a SOF after junk still counts (and can still be a bomb)."""
    i = 2
    while (i := data.find(b"\xff", i)) >= 0:
        while i < len(data) and data[i] == 0xFF:  # fill bytes
            i += 1
        if i >= len(data):
            return None
        marker = data[i]
        i += 1
        if marker in _JPEG_SOF:  # length (2), precision (1), height (2), width (2)
            if i + 7 > len(data):
                return None
            height, width = struct.unpack(">HH", data[i + 3 : i + 7])
            return width, height
        if marker != 0 and marker not in _JPEG_STANDALONE:  # 0: a stuffed 0xFF, junk
            if i + 2 > len(data):
                return None
            i += struct.unpack(">H", data[i : i + 2])[0]
    return None


def _undecodable(data: bytes, why: str) -> PoisonMessage:
    return PoisonMessage(f"cannot decode image ({len(data)} bytes, starts {data[:4].hex()}): {why}")


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
        # A decompression bomb (a few bytes declaring 50000x50000) is refused from its header,
        # before OpenCV allocates. Only the formats ingest sends are accepted, so every image's
        # size is checked here: OpenCV's own limit is process-wide, 2^30 pixels unless
        # OPENCV_IO_MAX_IMAGE_PIXELS is set, and raises cv2.error rather than return None.
        size = declared_size(data)
        if size is None:
            known = data[:2] in (b"\xff\xd8", b"BM") or data[:4] in (b"\x89PNG", b"RIFF")
            why = "corrupt or truncated header" if known else "not a JPEG, PNG, BMP or WebP"
            raise _undecodable(data, why)
        if size[0] * size[1] > max_pixels:
            raise PoisonMessage(
                f"image header declares {size[0]}x{size[1]}, more than {max_pixels} pixels"
            )
        try:
            image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        except cv2.error as exc:
            raise _undecodable(data, str(exc).strip()) from None
        if image is None:
            raise _undecodable(data, "corrupt or truncated")
        if image.shape[0] * image.shape[1] > max_pixels:  # the header misread: still refuse
            raise PoisonMessage(
                f"image {image.shape[1]}x{image.shape[0]} exceeds {max_pixels} pixels"
            )
        return image
    name = ImageEncoding.Name(frame.encoding) if frame.encoding in ImageEncoding.values() else ""
    raise PoisonMessage(f"unsupported image encoding {name or frame.encoding}")
