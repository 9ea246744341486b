"""The report's MP4: H.264 in yuv420p with the index up front, which every browser plays."""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path

import cv2
import imageio_ffmpeg
import numpy as np

from services.capture.pixels import decode_frame
from services.core.claimcheck import Data
from services.core.errors import PoisonMessage
from steadyeye.v1.common_pb2 import FrameRef

MAX_PIXELS = 8192 * 8192


def pixels(data: Data | None, ref: FrameRef) -> np.ndarray | None:
    """A frame's BGR image (a copy) from its payload, decoded as capture decodes it; None when
    gone or not a frame of the record's size."""
    if data is None:
        return None
    try:
        return decode_frame(data, ref, MAX_PIXELS)
    except PoisonMessage:
        return None


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
