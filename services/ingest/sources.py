"""Frame sources. Video files and streams decode with OpenCV (FFmpeg); image files pass through
still encoded, so a JPEG is never decoded and re-encoded on its way to preprocess."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


class SourceError(Exception):
    """The source cannot be opened or stopped delivering frames."""


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
        if not self._capture.isOpened():
            raise SourceError(f"cannot open video source {redact(uri)}")
        self.fps = self._capture.get(cv2.CAP_PROP_FPS) or 0.0

    def frames(self, start: int = 0) -> Iterator[SourceFrame]:
        if start:
            self._capture.set(cv2.CAP_PROP_POS_FRAMES, start)
        index = start
        while True:
            ok, image = self._capture.read()
            if not ok:
                return
            yield SourceFrame(index, image=image)
            index += 1

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
            raise SourceError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in {path}")

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
        raise SourceError(f"source {uri} does not exist")
    if path.is_dir() or path.suffix.lower() in IMAGE_SUFFIXES:
        return ImageSource(path)
    return VideoSource(uri)
