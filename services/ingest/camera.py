"""One camera's life: open, read, pace, publish; reconnect with backoff when a stream drops."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

import cv2
from google.protobuf.timestamp_pb2 import Timestamp
from prometheus_client import Counter, Gauge

from services.core.claimcheck import PayloadStore
from services.core.errors import TransientError
from services.core.payload_keys import frame_key
from services.ingest.backlog import Backlog
from services.ingest.cameras import Camera
from services.ingest.failures import SourceFailures
from services.ingest.settings import IngestSettings
from services.ingest.sources import BrokenSource, SourceError, SourceFrame, open_source, redact
from steadyeye.v1.common_pb2 import FrameRef
from steadyeye.v1.frames_pb2 import Frame, ImageEncoding

log = logging.getLogger(__name__)

frames_total = Counter("steadyeye_ingest_frames_total", "Frames published", ["camera"])
source_up = Gauge("steadyeye_ingest_source_up", "1 while the source delivers frames", ["camera"])
reconnects = Counter("steadyeye_ingest_reconnects_total", "Source reopen attempts", ["camera"])
dropped = Counter(
    "steadyeye_ingest_frames_dropped_total",
    "Live frames dropped (oldest first) while the pipeline's backlog was over its limit",
    ["camera"],
)
last_frame = Gauge(
    "steadyeye_camera_last_frame_timestamp_seconds", "Capture time of the last frame", ["camera"]
)

Publish = Callable[[Frame], bool]  # False: stopping, the frame was not sent


class CameraWorker(threading.Thread):
    def __init__(
        self,
        camera: Camera,
        settings: IngestSettings,
        payloads: PayloadStore,
        publish: Publish,
        next_live_id: Callable[[str], int],
        backlog: Backlog,
        stop: threading.Event,
        failures: SourceFailures | None = None,
    ) -> None:
        super().__init__(name=f"camera-{camera.id}", daemon=True)
        self.camera = camera
        self._settings = settings
        self._payloads = payloads
        self._publish = publish
        self._next_live_id = next_live_id
        self._backlog = backlog
        self._held: deque[SourceFrame] = deque(maxlen=settings.live_buffer_frames)
        self._halt = stop
        self._failures = failures or SourceFailures()
        self.published = 0

    def run(self) -> None:
        camera = self.camera
        self._delay = self._settings.reconnect_initial_s
        while not self._halt.is_set():
            try:
                self._stream()
            except BrokenSource as exc:  # a file: opening it again cannot help
                source_up.labels(camera.id).set(0)
                if not self._goes_on_after(exc):
                    return
            except SourceError as exc:
                source_up.labels(camera.id).set(0)
                if not camera.is_stream:
                    log.error("camera %s: %s; this camera stops, the others go on", camera.id, exc)
                    return
                log.warning("camera %s: %s; reconnecting in %.1fs", camera.id, exc, self._delay)
            if self._done():
                break
            if not camera.is_stream and not camera.loop:
                break
            if camera.is_stream:
                reconnects.labels(camera.id).inc()
                self._halt.wait(self._delay)
                self._delay = min(self._delay * 2, self._settings.reconnect_max_s)
        source_up.labels(camera.id).set(0)
        log.info("camera %s finished after %d frames", camera.id, self.published)

    def _goes_on_after(self, error: BrokenSource) -> bool:
        """Report a broken file (once); True if the camera goes on: a looping camera replays
        the frames a truncated file does have, every other broken file stops its camera (so a
        looping one never spins re-opening a file that yields nothing)."""
        goes_on = error.kind == "truncated" and self.camera.loop and not self._done()
        outcome = "looping over the frames it has" if goes_on else "this camera stops"
        self._failures.report(self.camera.id, error, f"{outcome}, the others go on")
        return goes_on

    def _done(self) -> bool:
        return self.camera.max_frames is not None and self.published >= self.camera.max_frames

    def _stream(self) -> None:
        camera = self.camera
        source = open_source(camera.source, self._settings.stale_after_s)
        try:
            fps = camera.fps or source.fps or 10.0
            started, first = 0.0, None  # set at the first frame to send
            for frame in source.frames():
                if self._halt.is_set() or self._done():
                    return
                source_up.labels(camera.id).set(1)
                self._delay = self._settings.reconnect_initial_s  # frames flow again
                if camera.is_stream:
                    pending = self._hold_while_backlogged(frame)
                else:
                    if not self._has_room():  # a file can wait: pause, lose nothing
                        if not self._backlog.wait_for_room(camera.priority):
                            return
                        first = None  # realtime pacing restarts from here, no burst
                    if camera.pace == "realtime":
                        if first is None:
                            started, first = time.monotonic(), frame.index
                        self._halt.wait(
                            max(0.0, started + (frame.index - first) / fps - time.monotonic())
                        )
                    pending = [frame]
                for item in pending:
                    if self._halt.is_set() or self._done():  # SIGTERM during a wait: no more
                        return
                    message = self._stored(item, source.uri)
                    if message is None or not self._publish(message):
                        return
                    self.published += 1
                    self._backlog.published()
                    frames_total.labels(camera.id).inc()
                    last_frame.labels(camera.id).set(time.time())
        finally:
            source.close()
        if camera.is_stream and not self._halt.is_set():
            raise SourceError(f"stream {redact(camera.source)} ended")

    def _hold_while_backlogged(self, frame: SourceFrame) -> list[SourceFrame]:
        """A live camera cannot pause: while the backlog is over its limit keep reading (the
        stream stays current) but hold only the newest frames; the oldest are dropped."""
        if not self._held and self._has_room():
            return [frame]
        if len(self._held) == self._held.maxlen:
            dropped.labels(self.camera.id).inc()
        self._held.append(frame)
        if not self._has_room():
            return []
        pending = list(self._held)
        self._held.clear()
        return pending

    def _has_room(self) -> bool:
        return self._backlog.has_room_for(self.camera.priority)

    def _stored(self, frame: SourceFrame, uri: str) -> Frame | None:
        """The frame's message, its pixels in the claim-check store. While the store cannot
        take them (Redis down, tmpfs full) wait and retry: a file pauses, a stream's frames wait
        in its source; None once halted."""
        delay = self._settings.reconnect_initial_s
        while not self._halt.is_set():
            try:
                return self._message(frame, uri)
            except TransientError as exc:
                log.warning("camera %s: %s; retrying in %.1fs", self.camera.id, exc, delay)
                self._halt.wait(delay)
                delay = min(delay * 2, self._settings.reconnect_max_s)
        return None

    def _message(self, frame: SourceFrame, uri: str) -> Frame:
        camera = self.camera
        now = time.time()
        # File frames are numbered by position (continuing across loops), so a restarted ingest
        # re-reads the same ids and consumers can dedupe; a live stream has no position, so its
        # ids come from a counter in Redis that survives restarts.
        frame_id = self._next_live_id(camera.id) if camera.is_stream else self.published
        ref = FrameRef(camera_id=camera.id, frame_id=frame_id, capture_time=_timestamp(now))
        key = frame_key(camera.id, frame_id)
        if frame.encoded is not None:
            encoding, data = ImageEncoding.IMAGE_ENCODING_JPEG, frame.encoded
        elif self._settings.encoding == "jpeg":
            _, buffer = cv2.imencode(
                ".jpg", frame.image, [cv2.IMWRITE_JPEG_QUALITY, self._settings.jpeg_quality]
            )
            encoding, data = ImageEncoding.IMAGE_ENCODING_JPEG, buffer.tobytes()
        else:
            encoding, data = ImageEncoding.IMAGE_ENCODING_BGR24, frame.image.data
        if frame.image is not None:
            ref.height, ref.width = frame.image.shape[:2]
        return Frame(
            ref=ref, encoding=encoding, image=self._payloads.put(key, data), source_uri=redact(uri)
        )


def _timestamp(seconds: float) -> Timestamp:
    stamp = Timestamp()
    stamp.FromNanoseconds(int(seconds * 1e9))
    return stamp
