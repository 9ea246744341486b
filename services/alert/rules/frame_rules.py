"""Rules about a whole frame or camera: occupancy, input_quality, camera_silent."""

from __future__ import annotations

from typing import Any

from .base import Evaluator
from .episode import Episode, Timing
from .events import Firing, FrameObservation
from .geometry import anchor, inside
from .models import CameraSilent, Defaults, InputQuality, Occupancy


class _EpisodePerCamera(Evaluator):
    def __init__(self, camera_id: str, rule: Any, defaults: Defaults) -> None:
        super().__init__(camera_id, rule, defaults)
        self.episode = Episode()
        self.timing = Timing(rule.for_s, rule.clear_s, self.cooldown_s)

    def to_state(self) -> dict[str, Any]:
        return {"episode": self.episode.to_dict()}

    def load_state(self, data: dict[str, Any]) -> None:
        self.episode = Episode.from_dict(data["episode"])

    def _step(
        self, holds: bool, obs: FrameObservation, track_ids: tuple[int, ...], message: str
    ) -> list[Firing]:
        if not self.episode.update(holds, obs.capture_time, obs.frame_id, self.timing):
            return []
        assert self.episode.start_t is not None
        return [
            self.fire(
                ("episode", self.episode.start_frame),
                track_ids=track_ids,
                first_seen=self.episode.start_t,
                last_seen=obs.capture_time,
                frame_id=obs.frame_id,
                message=message,
            )
        ]


class OccupancyEval(_EpisodePerCamera):
    rule: Occupancy

    def __init__(self, camera_id: str, rule: Occupancy, defaults: Defaults) -> None:
        super().__init__(camera_id, rule, defaults)

    def observe(self, obs: FrameObservation) -> list[Firing]:
        rule = self.rule
        ids = tuple(
            sorted(
                {
                    t.track_id
                    for t in obs.tracks
                    if self.wants(t.class_name)
                    and (rule.polygon is None or inside(anchor(t.box), rule.polygon))
                }
            )
        )
        count = len(ids)
        if rule.above is not None:
            holds, bound = count > rule.above, f"above {rule.above}"
        else:
            holds, bound = count < (rule.below or 0), f"below {rule.below}"
        what = "/".join(rule.classes) if rule.classes else "objects"
        where = f"in {rule.id!r}" if rule.polygon is not None else f"in view ({rule.id!r})"
        return self._step(holds, obs, ids, f"{count} {what} {where}: {bound} for {rule.for_s} s")


class QualityEval(_EpisodePerCamera):
    rule: InputQuality

    def __init__(self, camera_id: str, rule: InputQuality, defaults: Defaults) -> None:
        super().__init__(camera_id, rule, defaults)

    def observe(self, obs: FrameObservation) -> list[Firing]:
        rule, problems = self.rule, []
        # A measure that is missing (None) or not configured never makes the picture bad.
        dark, blurred = rule.min_brightness, rule.min_sharpness
        if dark is not None and obs.brightness is not None and obs.brightness < dark:
            problems.append(f"too dark (brightness {obs.brightness:.1f} < {dark})")
        if blurred is not None and obs.sharpness is not None and obs.sharpness < blurred:
            problems.append(f"blurred (sharpness {obs.sharpness:.1f} < {blurred})")
        message = f"picture {' and '.join(problems)} for {rule.for_s} s ({rule.id!r})"
        return self._step(bool(problems), obs, (), message)


class SilentEval(Evaluator):
    rule: CameraSilent

    def __init__(self, camera_id: str, rule: CameraSilent, defaults: Defaults) -> None:
        super().__init__(camera_id, rule, defaults)
        self.fired_for: float | None = None  # last-seen time of the silence already alerted
        self.last_fire_t: float | None = None

    def check_silence(self, last_seen: float, now: float, frame_id: int) -> list[Firing]:
        silent_for = now - last_seen
        if silent_for < self.rule.after_s or self.fired_for == last_seen:
            return []
        if self.last_fire_t is not None and now - self.last_fire_t < self.cooldown_s:
            return []
        self.fired_for, self.last_fire_t = last_seen, now
        return [
            self.fire(
                # The silence is named by the camera's last frame time: every replica that checks
                # the same silence derives the same id.
                ("silence", last_seen),
                track_ids=(),
                first_seen=last_seen,
                last_seen=now,
                frame_id=frame_id,
                message=f"no frames from camera {self.camera_id!r} for {silent_for:.1f} s",
            )
        ]

    def to_state(self) -> dict[str, Any]:
        return {"fired_for": self.fired_for, "last_fire_t": self.last_fire_t}

    def load_state(self, data: dict[str, Any]) -> None:
        fired_for, last = data["fired_for"], data["last_fire_t"]
        self.fired_for = None if fired_for is None else float(fired_for)
        self.last_fire_t = None if last is None else float(last)
