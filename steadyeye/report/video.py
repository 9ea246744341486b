"""The report's MP4: H.264 in yuv420p with the index up front, which every browser plays."""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path

import cv2
import imageio_ffmpeg
import numpy as np

from services.core.claimcheck import Data
from steadyeye.v1.common_pb2 import FrameRef


def pixels(data: Data | None, ref: FrameRef) -> np.ndarray | None:
    """A frame's BGR image from its payload: raw BGR24 of the ref's size, or an encoded image
    (the two ways ingest stores one, as alert's snapshots read them); None when gone or bad."""
    if data is None:
        return None
    buffer = np.frombuffer(data, np.uint8)
    if ref.width and ref.height and buffer.size == ref.width * ref.height * 3:
        # A copy: a shared-memory payload is a map of a file that may be deleted meanwhile.
        return buffer.reshape(ref.height, ref.width, 3).copy()
    return cv2.imdecode(buffer, cv2.IMREAD_COLOR)


class Video:
    """Frames to an MP4 through imageio-ffmpeg's ffmpeg, as they come; its size is the first
    frame's (a later frame of another size, after a stream reconnects, is scaled to it)."""

    def __init__(self, path: Path, fps: float) -> None:
        self.path = path
        self.fps = fps
        self.frames = 0
        self.size: tuple[int, int] | None = None  # width, height
        self._writer: Generator[None, np.ndarray, None] | None = None

    def write(self, image: np.ndarray) -> None:
        if self._writer is None:
            height, width = image.shape[:2]
            self.size = (width, height)
            self._writer = imageio_ffmpeg.write_frames(
                str(self.path),
                self.size,
                pix_fmt_in="bgr24",
                pix_fmt_out="yuv420p",  # 4:2:0: what browsers' H.264 decoders take
                fps=self.fps,
                codec="libx264",
                quality=6,
                macro_block_size=2,  # yuv420p needs even sides only; 16 would rescale 576 rows
                ffmpeg_log_level="error",
                # faststart: the index before the data, so a browser starts playing at once;
                # veryfast: the encoder shares the CPUs with the pipeline it is recording.
                output_params=["-preset", "veryfast", "-movflags", "+faststart"],
            )
            self._writer.send(None)  # type: ignore[arg-type]  # starts the generator
        if (image.shape[1], image.shape[0]) != self.size:
            image = cv2.resize(image, self.size)
        self._writer.send(np.ascontiguousarray(image))
        self.frames += 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()  # ffmpeg finishes the file (and moves the index up front)
            self._writer = None
