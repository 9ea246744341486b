"""Detections, tracks and drift events -> frames for labelling, in a dataset.

Per frame the strategies are evaluated in file order and the first that matches, among those
with budget left (a strategy at one of its limits passes the frame on), names the reason; the
frame is then captured unless its pixels have left the claim-check store (counted: capture reads
them while they are there and keeps no copy of every frame) or it is a near-duplicate of a
recent capture of the camera for the same reason. Capture publishes nothing: its own consumer
group, off the pipeline's path.

track_churn strategies are decided when a frame's tracks arrive: for frames no other strategy
took, from the detections of the camera's last few frames kept in memory.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter as Tally
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC
from typing import Protocol

import redis
from google.protobuf.message import Message
from opentelemetry import trace
from prometheus_client import Counter

from services.capture.captured import Box, Captured
from services.capture.churn import Bounded, TrackMemory
from services.capture.dedupe import RecentCaptures, fingerprint
from services.capture.episodes import Episodes
from services.capture.limits import PREFIX, LimitCounters
from services.capture.pixels import decode_frame, encode_jpeg
from services.capture.privacy import black_out, visible
from services.capture.settings import CaptureSettings
from services.capture.strategies import (
    Details,
    Episode,
    FrameFacts,
    Seen,
    StrategyBase,
    StrategyFile,
)
from services.core.claimcheck import PayloadStore
from services.core.errors import PoisonMessage, TransientError
from services.core.handler import Handler, Incoming, Inputs, Result
from services.core.messages import Output
from services.core.payload_keys import frame_key
from services.core.settings import TopicSettings
from steadyeye.v1.detections_pb2 import Detection, Detections
from steadyeye.v1.drift_pb2 import DriftEvent, DriftState
from steadyeye.v1.tracks_pb2 import Tracks

log = logging.getLogger(__name__)
captured_total = Counter(
    "steadyeye_capture_captured_total", "Frames captured for labelling", ["camera", "reason"]
)
duplicates_total = Counter(
    "steadyeye_capture_duplicates_total",
    "Frames chosen but not captured: near-duplicates of a recent capture for the same reason",
    ["camera", "reason"],
)
expired_total = Counter(
    "steadyeye_capture_expired_total",
    "Frames chosen whose pixels had left the claim-check store (capture fell behind)",
    ["camera", "reason"],
)
limited_total = Counter(
    "steadyeye_capture_limited_total",
    "Frames a strategy matched while at one of its limits (passed on to the next strategy)",
    ["camera", "reason", "window"],
)
unavailable_total = Counter(
    "steadyeye_capture_unavailable_total",
    "track_churn frames whose detections were no longer (or never) in memory",
    ["camera", "reason"],
)
PENDING_FRAMES = 4096  # churn verdicts waiting for their frame's detections
MAX_CAMERAS = 10_000
Match = tuple[StrategyBase, Details]  # a strategy that matched a frame, and why


class DatasetWriter(Protocol):
    """services.capture.dataset.Dataset, as the handler uses it."""

    def add(self, captured: Captured) -> str: ...

    def flush(self) -> None: ...


def inputs(topics: TopicSettings) -> Inputs:
    return {topics.detections: Detections, topics.tracks: Tracks, topics.drift: DriftEvent}


def stats_key(prefix: str = PREFIX) -> str:
    """A Redis hash of what capture did, across replicas and restarts: `captured`,
    `duplicate`, `expired`, `limited`, `unavailable`, and each as `<field>:<reason>`."""
    return f"{prefix}:stats"


@dataclass
class _Recent:
    """A frame's detections kept for track_churn, and whether a strategy took it already."""

    detections: Detections
    taken: bool


def _seen(detections: Iterable[Detection]) -> tuple[Seen, ...]:
    return tuple(Seen(d.class_name, d.score) for d in detections)


def to_boxes(
    detections: Iterable[Detection], width: int, height: int, class_names: Sequence[str]
) -> tuple[Box, ...]:
    """Boxes for the dataset, clipped to the image; a box no model could have produced is a
    PoisonMessage (it would become a wrong label)."""
    boxes = []
    for d in detections:
        b = d.box
        if not all(math.isfinite(v) for v in (b.x1, b.y1, b.x2, b.y2, d.score)):
            raise PoisonMessage("a detection has a non-finite coordinate or score")
        if not 0 <= d.score <= 1:
            raise PoisonMessage(f"a detection has score {d.score}, outside 0..1")
        if d.class_id >= len(class_names) or class_names[d.class_id] != d.class_name:
            known = class_names[d.class_id] if d.class_id < len(class_names) else "none"
            raise PoisonMessage(
                f"detection of class {d.class_id} {d.class_name[:50]!r}: the model's class "
                f"{d.class_id} is {known!r} (of {len(class_names)}); from another model?"
            )
        x1, x2 = min(max(b.x1, 0.0), width), min(max(b.x2, 0.0), width)
        y1, y2 = min(max(b.y1, 0.0), height), min(max(b.y2, 0.0), height)
        if x2 > x1 and y2 > y1:
            boxes.append(Box(x1, y1, x2, y2, d.score, d.class_id, d.class_name))
    return tuple(boxes)


class CaptureHandler(Handler):
    def __init__(
        self,
        strategies: StrategyFile,
        client: redis.Redis,
        payloads: PayloadStore,
        dataset: DatasetWriter,
        class_names: Sequence[str],
        settings: CaptureSettings,
        prefix: str = PREFIX,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """prefix: of every Redis key (tests isolate themselves with their own)."""
        self._strategies = strategies
        self._redis = client
        self._payloads = payloads
        self._dataset = dataset
        self._class_names = tuple(class_names)
        self._settings = settings
        self._limits = LimitCounters(client, prefix)
        self._recent = RecentCaptures(
            client,
            settings.dedupe_distance,
            settings.dedupe_recent,
            settings.dedupe_window_s,
            prefix,
        )
        self._episode_store = Episodes(client, prefix)
        self._stats_key = stats_key(prefix)
        self._clock = clock
        self._next_flush = clock() + settings.flush_interval_s
        self._churn = strategies.churn
        lookback = max((s.switch_within_frames for s in self._churn if s.switch_iou), default=0)
        self._tracks = TrackMemory(lookback)
        self._history: Bounded[str, Bounded[int, _Recent]] = Bounded(MAX_CAMERAS)
        self._pending: Bounded[tuple[str, int], list[Match]] = Bounded(PENDING_FRAMES)
        self._episodes: dict[str, tuple[Episode, bool] | None] = {}  # this batch's cameras
        self._stats: Tally[str] = Tally()

    # ---- the loop's hooks ----------------------------------------------------------------------

    def handle_batch(self, items: list[Incoming]) -> list[Result]:
        # Every camera's drift episode in one request per batch, not one per frame.
        cameras = {item.message.ref.camera_id for item in items}
        try:
            self._episodes = self._episode_store.load(cameras)
        except redis.RedisError as exc:
            error = TransientError(f"redis unavailable reading drift episodes: {exc}")
            return [error for _ in items]
        return super().handle_batch(items)

    def handle(self, message: Message) -> list[Output]:
        if isinstance(message, Detections):
            self._frame(message)
        elif isinstance(message, Tracks):
            self._tracked(message)
        elif isinstance(message, DriftEvent):
            self._drift(message)
        return []  # capture publishes nothing

    def tick(self) -> list[Output]:
        self._save_stats()
        if self._clock() >= self._next_flush:
            self._next_flush = self._clock() + self._settings.flush_interval_s
            self._flush()
        return []

    def reload_state(self) -> None:
        # Rewound or moved: what memory holds may be ahead of what will be handled again.
        self._tracks.clear()
        self._history.clear()
        self._pending.clear()

    def close(self) -> None:
        self._flush()
        self._save_stats()

    def _flush(self) -> None:
        # The images are written already; a failed flush leaves the day files stale until the
        # next one (the dataset keeps them due), which is no reason to stop capturing.
        try:
            self._dataset.flush()
        except Exception as exc:
            log.warning("dataset index files not rewritten, will retry: %s", exc, exc_info=exc)

    # ---- per message ---------------------------------------------------------------------------

    def _frame(self, message: Detections) -> None:
        ref = message.ref
        facts = FrameFacts(
            ref.camera_id,
            ref.frame_id,
            _seen(message.detections),
            _seen(message.candidates),
            self._open_episode(ref.camera_id),
        )
        matches = (
            (strategy, details)
            for strategy in self._strategies.per_frame
            if (details := strategy.match(facts)) is not None
        )
        taken = self._take(message, matches)
        if not self._churn:
            return
        pending = self._pending.pop((ref.camera_id, ref.frame_id), None)
        if pending is not None and not taken:  # its tracks came first
            taken = self._take(message, pending)
        frames = self._history.get(ref.camera_id)
        if frames is None:
            frames = Bounded(self._settings.churn_history_frames)
        self._history[ref.camera_id] = frames
        kept = Detections(
            ref=message.ref,
            model=message.model,
            detections=message.detections,
            candidates=message.candidates,
        )
        frames[ref.frame_id] = _Recent(kept, taken)

    def _tracked(self, message: Tracks) -> None:
        if not self._churn:
            return
        churn = self._tracks.observe(message)
        if churn is None:
            return  # a replayed frame
        chosen: dict[int, list[Match]] = {}
        for strategy in self._churn:  # in file order, per frame
            for frame_id, details in strategy.match_churn(churn).items():
                chosen.setdefault(frame_id, []).append((strategy, details))
        camera_id = churn.camera_id
        frames = self._history.get(camera_id)
        for frame_id, matches in sorted(chosen.items()):
            recent = frames.get(frame_id) if frames else None
            if recent is None:
                if not frames or frame_id > next(reversed(frames)):
                    self._pending[(camera_id, frame_id)] = matches
                else:
                    self._count("unavailable", camera_id, matches[0][0].name)
            elif not recent.taken:
                recent.taken = self._take(recent.detections, matches)

    def _drift(self, message: DriftEvent) -> None:
        if not message.event_id:
            raise PoisonMessage("drift event without event_id")
        camera_id = message.ref.camera_id
        known = self._episodes.get(camera_id)
        same = known is not None and known[0].event_id == message.event_id
        if message.state == DriftState.DRIFT_STATE_STARTED:
            if same:
                return  # open already, or a replay of an episode that has ended since
            start = message.episode_start_frame_id or message.ref.frame_id
            episode = Episode(message.event_id, start)
            self._episode_store.save(camera_id, episode, True)
            self._episodes[camera_id] = (episode, True)
        elif message.state == DriftState.DRIFT_STATE_ENDED:
            if same and known is not None and known[1]:
                self._episode_store.save(camera_id, known[0], False)
                self._episodes[camera_id] = (known[0], False)
        else:
            raise PoisonMessage(f"drift event {message.event_id[:100]!r} neither started nor ended")

    def _open_episode(self, camera_id: str) -> Episode | None:
        known = self._episodes.get(camera_id)
        return known[0] if known is not None and known[1] else None

    # ---- capturing one frame -------------------------------------------------------------------

    def _take(self, message: Detections, matches: Iterable[Match]) -> bool:
        """Capture the frame for the first match whose strategy has budget left; False when
        there is none (the frame is free for track_churn)."""
        ref = message.ref
        when = ref.capture_time.ToNanoseconds() / 1e9
        for strategy, details in matches:
            # A look before any pixel is read: a strategy at its limit costs no decode, and
            # lets the next strategy have the frame. take() counts, atomically, later.
            full = self._limits.full(
                strategy.name, self._strategies.limits_of(strategy), ref.camera_id, when
            )
            if full is None:
                self._capture(message, strategy, details)
                return True
            self._count("limited", ref.camera_id, strategy.name, full)
        return False

    def _capture(self, message: Detections, strategy: StrategyBase, details: Details) -> None:
        ref, reason = message.ref, strategy.name
        camera_id = ref.camera_id
        span = trace.get_current_span()
        span.set_attribute("steadyeye.capture.reason", reason)
        boxes = to_boxes(message.detections, ref.width, ref.height, self._class_names)
        candidates = to_boxes(message.candidates, ref.width, ref.height, self._class_names)
        when = ref.capture_time.ToNanoseconds() / 1e9
        limits = self._strategies.limits_of(strategy)
        data = self._payloads.find(frame_key(camera_id, ref.frame_id))
        if data is None:
            self._count("expired", camera_id, reason)
            return
        image = decode_frame(data, ref, self._settings.max_image_pixels)
        hidden = black_out(image, self._strategies.privacy.get(camera_id, ()))
        phash = fingerprint(image)
        if self._recent.duplicate(camera_id, reason, phash, when) is not None:
            self._count("duplicate", camera_id, reason)
            return
        over = self._limits.take(reason, limits, camera_id, when)
        if over is not None:
            self._count("limited", camera_id, reason, over)
            return
        episode = self._open_episode(camera_id)
        captured = Captured(
            camera_id=camera_id,
            frame_id=ref.frame_id,
            capture_time=ref.capture_time.ToDatetime(tzinfo=UTC),
            reason=reason,
            strategy=strategy.type,
            model_name=message.model.name,
            model_version=message.model.version,
            width=ref.width,
            height=ref.height,
            jpeg=encode_jpeg(image, self._settings.jpeg_quality),
            boxes=visible(boxes, hidden),
            candidates=visible(candidates, hidden),
            class_names=self._class_names,
            drift_event_id=episode.event_id if episode else "",
            extra=dict(details),
        )
        try:
            path = self._dataset.add(captured)
        except Exception as exc:
            self._limits.give_back(reason, limits, camera_id, when)
            if isinstance(exc, OSError):  # storage down or full: retried, the frame waits
                raise TransientError(f"cannot write to the dataset: {exc}") from exc
            if isinstance(exc, ValueError):  # the dataset's DatasetError: this frame, never
                raise PoisonMessage(f"the dataset refused frame {ref.frame_id}: {exc}") from exc
            raise
        self._recent.remember(camera_id, reason, phash, when)
        self._count("captured", camera_id, reason)
        span.set_attribute("steadyeye.capture.path", path)
        log.debug("camera %s frame %s captured (%s): %s", camera_id, ref.frame_id, reason, path)

    def _count(self, what: str, camera_id: str, reason: str, window: str = "") -> None:
        trace.get_current_span().set_attribute("steadyeye.capture.outcome", what)
        if what == "captured":
            captured_total.labels(camera_id, reason).inc()
        elif what == "duplicate":
            duplicates_total.labels(camera_id, reason).inc()
        elif what == "expired":
            expired_total.labels(camera_id, reason).inc()
        elif what == "limited":
            limited_total.labels(camera_id, reason, window).inc()
        else:
            unavailable_total.labels(camera_id, reason).inc()
        self._stats[what] += 1
        self._stats[f"{what}:{reason}"] += 1

    def _save_stats(self) -> None:
        """Counts since the last save to the shared hash; a Redis that is down only delays
        them (they are advisory: the metrics are the record)."""
        if not self._stats:
            return
        try:
            with self._redis.pipeline(transaction=False) as pipe:
                for field, count in self._stats.items():
                    pipe.hincrby(self._stats_key, field, count)
                pipe.execute()
        except redis.RedisError as exc:
            log.warning("could not save capture counts, will retry: %s", exc)
            return
        self._stats.clear()
