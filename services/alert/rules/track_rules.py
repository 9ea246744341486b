"""Rules about individual tracks: zone_intrusion, line_crossing, forbidden_class."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .base import TRACK_TTL_S, Evaluator, latest_tracks
from .episode import Episode, Timing
from .events import Counts, Firing, FrameObservation
from .geometry import Point, anchor, crosses_segment, inside, side
from .models import Defaults, ForbiddenClass, LineCrossing, ZoneIntrusion


@dataclass(slots=True)
class _Tracked:
    episode: Episode
    class_name: str
    last_seen_t: float


def _dump(tracks: dict[int, _Tracked]) -> list[dict[str, Any]]:
    # A list sorted by id, not a dict: JSON would turn int keys into strings.
    return [
        {"id": tid, "class": s.class_name, "seen": s.last_seen_t, **s.episode.to_dict()}
        for tid, s in sorted(tracks.items())
    ]


def _load(rows: list[dict[str, Any]]) -> dict[int, _Tracked]:
    return {
        int(r["id"]): _Tracked(Episode.from_dict(r), str(r["class"]), float(r["seen"]))
        for r in rows
    }


class _EpisodePerTrack(Evaluator):
    """An Episode per track; a track that is absent from a frame counts as 'does not hold'."""

    timing: Timing

    def __init__(self, camera_id: str, rule: Any, defaults: Defaults) -> None:
        super().__init__(camera_id, rule, defaults)
        self.tracks: dict[int, _Tracked] = {}

    def holds(self, class_name: str, box: tuple[float, float, float, float]) -> bool:
        raise NotImplementedError

    def describe(self, tid: int, state: _Tracked, t: float) -> str:
        raise NotImplementedError

    def episode_key(self, tid: int, state: _Tracked) -> tuple[str | int, ...]:
        return ("track", tid, state.episode.start_frame)

    def observe(self, obs: FrameObservation) -> list[Firing]:
        t, seen, firings = obs.capture_time, latest_tracks(obs), []
        for tid in sorted(self.tracks.keys() | seen.keys()):
            track = seen.get(tid)
            holds = track is not None and self.holds(track.class_name, track.box)
            state = self.tracks.get(tid)
            if state is None:
                if not holds or track is None:
                    continue  # no state for tracks the rule has never matched
                state = self.tracks[tid] = _Tracked(Episode(), track.class_name, t)
            if track is not None:
                state.class_name, state.last_seen_t = track.class_name, t
            if state.episode.update(holds, t, obs.frame_id, self.timing):
                assert state.episode.start_t is not None
                firings.append(
                    self.fire(
                        self.episode_key(tid, state),
                        track_ids=(tid,),
                        first_seen=state.episode.start_t,
                        last_seen=t,
                        frame_id=obs.frame_id,
                        message=self.describe(tid, state, t),
                    )
                )
            if self.forget(state, t):
                del self.tracks[tid]
        return firings

    def forget(self, state: _Tracked, t: float) -> bool:
        """Idle and out of cooldown: nothing left to remember about this track."""
        ep = state.episode
        return not ep.active and (
            ep.last_fire_t is None or t - ep.last_fire_t >= self.timing.cooldown_s
        )

    def to_state(self) -> dict[str, Any]:
        return {"tracks": _dump(self.tracks)}

    def load_state(self, data: dict[str, Any]) -> None:
        self.tracks = _load(data["tracks"])


class ZoneEval(_EpisodePerTrack):
    rule: ZoneIntrusion

    def __init__(self, camera_id: str, rule: ZoneIntrusion, defaults: Defaults) -> None:
        super().__init__(camera_id, rule, defaults)
        self.timing = Timing(rule.min_dwell_s, rule.exit_grace_s, self.cooldown_s)

    def holds(self, class_name: str, box: tuple[float, float, float, float]) -> bool:
        return self.wants(class_name) and inside(anchor(box), self.rule.polygon)

    def describe(self, tid: int, state: _Tracked, t: float) -> str:
        dwell = t - (state.episode.start_t or t)
        return f"{state.class_name} {tid} in zone {self.rule.id!r} for {dwell:.1f} s"


class ForbiddenEval(_EpisodePerTrack):
    rule: ForbiddenClass

    def __init__(self, camera_id: str, rule: ForbiddenClass, defaults: Defaults) -> None:
        super().__init__(camera_id, rule, defaults)
        # An infinite cooldown is "once per track", even across episodes.
        self.timing = Timing(rule.for_s, rule.clear_s, math.inf)

    def holds(self, class_name: str, box: tuple[float, float, float, float]) -> bool:
        return self.wants(class_name)

    def episode_key(self, tid: int, state: _Tracked) -> tuple[str | int, ...]:
        return ("track", tid)  # once per track: the track alone names the episode

    def describe(self, tid: int, state: _Tracked, t: float) -> str:
        return f"forbidden {state.class_name} {tid} ({self.rule.id!r})"

    def forget(self, state: _Tracked, t: float) -> bool:
        if state.episode.last_fire_t is None:
            return not state.episode.active
        return t - state.last_seen_t > TRACK_TTL_S


@dataclass(slots=True)
class _Crossing:
    side: int = 0  # confirmed side of the line: +1 right, -1 left, 0 not yet known
    at: Point | None = None  # the feet's latest position on the confirmed side
    pending: int = 0  # consecutive observations on the other side
    pending_frame: int = -1
    pending_t: float = 0.0
    within: bool = False  # the move to the other side went through the segment itself
    seen: float = 0.0

    def to_dict(self, tid: int) -> dict[str, Any]:
        at = None if self.at is None else list(self.at)
        return {"id": tid, "side": self.side, "at": at, "pending": self.pending,
                "pending_frame": self.pending_frame, "pending_t": self.pending_t,
                "within": self.within, "seen": self.seen}  # fmt: skip

    @classmethod
    def from_dict(cls, r: dict[str, Any]) -> _Crossing:
        at = None if r["at"] is None else (float(r["at"][0]), float(r["at"][1]))
        return cls(int(r["side"]), at, int(r["pending"]), int(r["pending_frame"]),
                   float(r["pending_t"]), bool(r["within"]), float(r["seen"]))  # fmt: skip


class LineEval(Evaluator):
    rule: LineCrossing

    def __init__(self, camera_id: str, rule: LineCrossing, defaults: Defaults) -> None:
        super().__init__(camera_id, rule, defaults)
        self.tracks: dict[int, _Crossing] = {}
        self.counts: Counts = {}

    def observe(self, obs: FrameObservation) -> list[Firing]:
        rule, t, firings = self.rule, obs.capture_time, []
        for tid, track in sorted(latest_tracks(obs).items()):
            state = self.tracks.get(tid)
            if state is None:
                if not self.wants(track.class_name):
                    continue
                state = self.tracks[tid] = _Crossing()
            state.seen = t
            feet = anchor(track.box)
            now_side = side(rule.start, rule.end, feet, rule.dead_band_px)
            if now_side == 0:
                continue  # on the line: evidence for neither side
            if state.side in (0, now_side):
                state.side, state.at, state.pending = now_side, feet, 0
                continue
            if state.pending == 0:
                assert state.at is not None
                state.pending_frame, state.pending_t = obs.frame_id, t
                state.within = crosses_segment(rule.start, rule.end, state.at, feet)
            state.pending += 1
            if state.pending < rule.min_frames:
                continue
            state.side, state.at, state.pending = now_side, feet, 0
            if state.within and self.wants(track.class_name):
                firing = self._crossed(tid, track.class_name, now_side, state, obs)
                if firing is not None:
                    firings.append(firing)
        for tid in [tid for tid, s in self.tracks.items() if t - s.seen > TRACK_TTL_S]:
            del self.tracks[tid]
        return firings

    def _crossed(
        self, tid: int, class_name: str, new_side: int, state: _Crossing, obs: FrameObservation
    ) -> Firing | None:
        direction = "in" if new_side > 0 else "out"
        tally = self.counts.setdefault(class_name, {"in": 0, "out": 0})
        tally[direction] += 1
        if self.rule.direction not in ("both", direction):
            return None
        return self.fire(
            ("cross", tid, state.pending_frame),
            track_ids=(tid,),
            first_seen=state.pending_t,
            last_seen=obs.capture_time,
            frame_id=obs.frame_id,
            message=(
                f"{class_name} {tid} crossed {self.rule.id!r} {direction}"
                f" ({class_name}: {tally['in']} in, {tally['out']} out so far)"
            ),
            counts={c: dict(v) for c, v in sorted(self.counts.items())},
        )

    def to_state(self) -> dict[str, Any]:
        return {
            "tracks": [s.to_dict(tid) for tid, s in sorted(self.tracks.items())],
            "counts": {c: dict(v) for c, v in sorted(self.counts.items())},
        }

    def load_state(self, data: dict[str, Any]) -> None:
        self.tracks = {int(r["id"]): _Crossing.from_dict(r) for r in data["tracks"]}
        self.counts = {
            str(c): {"in": int(v["in"]), "out": int(v["out"])} for c, v in data["counts"].items()
        }
