"""Frame sources. Video files and streams decode with OpenCV (FFmpeg); image files pass through
still encoded, so a JPEG is never decoded and re-encoded on its way to preprocess."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


# Why a file source is broken: a short, fixed set, so it can label a metric.
BrokenKind = Literal["missing", "no_images", "unreadable", "no_frames", "truncated"]


class SourceError(Exception):
    """The source cannot be opened or stopped delivering frames."""


class BrokenSource(SourceError):
    """A file source that cannot deliver (all) its frames. Unlike a dropped stream, opening the
    same file again cannot help, so the camera reports it once instead of retrying."""

    def __init__(self, kind: BrokenKind, message: str) -> None:
        super().__init__(message)
        self.kind: BrokenKind = kind


@dataclass(frozen=True)
class SourceFrame:
    index: int  # position in the source (frame number in a file)
    image: np.ndarray | None = None  # decoded BGR (video)
    encoded: bytes | None = None  # still-encoded image (image files)


def redact(uri: str) -> str:
    """Drop credentials from a stream URL before it reaches logs or messages."""
    return re.sub(r"//[^/@]+@", "//***@", uri)


class VideoSource:
    def __init__(self, uri: str, timeout_s: float = 10.0) -> None:
        self.uri = uri
        # Bounded open/read so a dead stream raises instead of blocking the camera forever.
        timeout_ms = int(timeout_s * 1000)
        params = [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
            timeout_ms,
            cv2.CAP_PROP_READ_TIMEOUT_MSEC,
            timeout_ms,
        ]
        self._capture = cv2.VideoCapture(uri, cv2.CAP_FFMPEG, params)
        self._is_file = "://" not in uri
        if not self._capture.isOpened():
            if self._is_file:
                raise BrokenSource(
                    "unreadable",
                    f"cannot decode video file {uri}: FFmpeg cannot open it "
                    "(not a video, or its header is corrupt or cut off)",
                )
            raise SourceError(f"cannot open video source {redact(uri)}")
        self.fps = self._capture.get(cv2.CAP_PROP_FPS) or 0.0
        # What the container's header says (or FFmpeg estimates from duration x fps); 0 or
        # less when unknown, as for live streams.
        self._promised = int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT))

    def frames(self, start: int = 0) -> Iterator[SourceFrame]:
        """The frames from `start`; a file that ends (well) before its header's frame count
        raises BrokenSource after yielding what it could, so no readable frame is lost."""
        if start:
            self._capture.set(cv2.CAP_PROP_POS_FRAMES, start)
        index = start
        while True:
            ok, image = self._capture.read()
            if not ok:
                break
            yield SourceFrame(index, image=image)
            index += 1
        if self._is_file:
            self._check_complete(start, index)

    def _check_complete(self, start: int, end: int) -> None:
        # FFmpeg reads to the last decodable packet and then reports a plain end of file:
        # comparing with the header's count is the only sign of a cut-off or corrupt file.
        if end == start == 0:
            raise BrokenSource(
                "no_frames", f"cannot decode video file {self.uri}: no frames could be read"
            )
        # A frame or 1% short: within what an estimated count can be off by.
        if self._promised > 0 and end < self._promised - max(1, self._promised // 100):
            raise BrokenSource(
                "truncated",
                f"video file {self.uri} ended after {end} frames but its header promises "
                f"{self._promised}: truncated or corrupt",
            )

    def close(self) -> None:
        self._capture.release()


class ImageSource:
    """One image file or a folder of them, in name order."""

    fps = 0.0

    def __init__(self, path: Path) -> None:
        self.uri = str(path)
        files = [path] if path.is_file() else sorted(p for p in path.iterdir() if p.is_file())
        self._files = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
        if not self._files:
            raise BrokenSource(
                "no_images", f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in {path}"
            )

    def frames(self, start: int = 0) -> Iterator[SourceFrame]:
        for index, file in enumerate(self._files[start:], start):
            yield SourceFrame(index, encoded=file.read_bytes())

    def close(self) -> None:
        pass


def open_source(uri: str, timeout_s: float = 10.0) -> VideoSource | ImageSource:
    if "://" in uri:
        return VideoSource(uri, timeout_s)
    path = Path(uri)
    if not path.exists():
        raise BrokenSource("missing", f"source {uri} does not exist")
    if path.is_dir() or path.suffix.lower() in IMAGE_SUFFIXES:
        return ImageSource(path)
    return VideoSource(uri)
