"""The report video's bookkeeping, apart from pixels: which frame goes next and which alert
banners it carries. Kafka delivers at least once and a topic's partitions interleave, so frames
can come twice or out of order; the video must hold each frame id once, in frame-id order."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass
class FrameOrder(Generic[T]):
    """Holds up to `capacity` frames and lets them out in frame-id order, each id once.

    A bounded buffer instead of sorting at the end: the video is written as the run goes and
    memory stays at `capacity` frames. A frame that arrives after a later one was let out is
    left out (counted in `late`): the video cannot go back."""

    capacity: int
    duplicates: int = 0
    late: int = 0
    _pending: dict[int, T] = field(default_factory=dict)
    _seen: set[int] = field(default_factory=set)
    _last: int | None = None  # the last frame id let out

    def wants(self, frame_id: int) -> bool:
        """False for a redelivery or a latecomer (counted), so its pixels are not fetched."""
        if frame_id in self._seen:
            self.duplicates += 1
            return False
        if self._last is not None and frame_id < self._last:
            self.late += 1
            self._seen.add(frame_id)
            return False
        return True

    def add(self, frame_id: int, item: T) -> list[tuple[int, T]]:
        """Take a frame `wants` accepted; returns the frames now due, oldest first."""
        self._seen.add(frame_id)
        self._pending[frame_id] = item
        due = []
        while len(self._pending) > self.capacity:
            due.append(self._pop())
        return due

    def flush(self) -> list[tuple[int, T]]:
        """Every frame still held, in order (the run is over)."""
        return [self._pop() for _ in range(len(self._pending))]

    def _pop(self) -> tuple[int, T]:
        frame_id = min(self._pending)
        self._last = frame_id
        return frame_id, self._pending.pop(frame_id)


@dataclass
class _Banner:
    frame_id: int
    text: str
    shown: int = 0


@dataclass
class Banners:
    """Alert lines over the video: each from the frame that fired it on, for `span` video
    frames (about 2 s of video), counted in frames written rather than frame ids, since a
    stream's ids skip the frames ingest shed."""

    span: int
    _live: list[_Banner] = field(default_factory=list)

    def add(self, frame_id: int, text: str) -> None:
        self._live.append(_Banner(frame_id, text))
        self._live.sort(key=lambda banner: banner.frame_id)  # stable: arrival order breaks ties

    def for_frame(self, frame_id: int) -> list[str]:
        """The lines to draw on this frame (frames come in id order); counts them as shown.
        An alert that arrives after its frame was written starts on the next frame written."""
        showing = [banner for banner in self._live if banner.frame_id <= frame_id]
        for banner in showing:
            banner.shown += 1
        self._live = [banner for banner in self._live if banner.shown < self.span]
        return [banner.text for banner in showing]
