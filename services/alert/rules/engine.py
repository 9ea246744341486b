"""AlertEngine: feeds each camera's frames through its rules, and snapshots per camera.

Pure logic, no I/O: the alert service's handler feeds it and publishes what it returns, and
may keep `to_state(camera)` in Redis so another replica can `load_state` and carry on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .base import Evaluator
from .drift_rules import DriftEval
from .events import DriftObservation, Firing, FrameObservation
from .frame_rules import OccupancyEval, QualityEval, SilentEval
from .models import (
    CameraSilent,
    Defaults,
    Drift,
    ForbiddenClass,
    InputQuality,
    LineCrossing,
    Occupancy,
    RuleBase,
    RuleSet,
    ZoneIntrusion,
)
from .track_rules import ForbiddenEval, LineEval, ZoneEval

STATE_VERSION = 1

_EVALUATORS: dict[type[RuleBase], type[Evaluator]] = {
    ZoneIntrusion: ZoneEval,
    LineCrossing: LineEval,
    Occupancy: OccupancyEval,
    ForbiddenClass: ForbiddenEval,
    CameraSilent: SilentEval,
    InputQuality: QualityEval,
    Drift: DriftEval,
}


@dataclass(slots=True)
class _Camera:
    evaluators: list[Evaluator]
    last_frame_id: int | None = None


class AlertEngine:
    """Rules over frame observations. Deterministic: the same observations in the same order
    (from a fresh engine or a restored snapshot) give the same firings with the same ids."""

    def __init__(self, rules: RuleSet) -> None:
        self.rules = rules
        self._cameras = {cam: self._fresh(cam) for cam in rules.cameras}

    @property
    def camera_ids(self) -> tuple[str, ...]:
        return tuple(self._cameras)

    def observe(self, obs: FrameObservation) -> list[Firing]:
        """Evaluate one frame. Frames of unknown cameras, and frames whose id is not above the
        camera's last one (redelivered or late), return [] and change nothing."""
        camera = self._cameras.get(obs.camera_id)
        if camera is None:
            return []
        if camera.last_frame_id is not None and obs.frame_id <= camera.last_frame_id:
            return []
        camera.last_frame_id = obs.frame_id
        return [firing for ev in camera.evaluators for firing in ev.observe(obs)]

    def observe_drift(self, drift: DriftObservation) -> list[Firing]:
        """Evaluate a camera's drift episode starting or ending. Unlike frames, drift events are
        not ordered against the camera's frames (another topic), and change no state: a replayed
        event gives the same firings with the same ids."""
        camera = self._cameras.get(drift.camera_id)
        if camera is None:
            return []
        return [firing for ev in camera.evaluators for firing in ev.observe_drift(drift)]

    def check_silence(self, camera_last_seen: Mapping[str, float], now: float) -> list[Firing]:
        """Fire camera_silent rules: `camera_last_seen` maps camera id to the time its latest
        frame arrived (the caller's record, e.g. from Redis). A camera missing from it has never
        been seen and is not judged."""
        firings: list[Firing] = []
        for cam_id, camera in self._cameras.items():
            last_seen = camera_last_seen.get(cam_id)
            if last_seen is None:
                continue
            frame_id = -1 if camera.last_frame_id is None else camera.last_frame_id
            for ev in camera.evaluators:
                firings.extend(ev.check_silence(float(last_seen), now, frame_id))
        return firings

    def to_state(self, camera_id: str) -> dict[str, Any]:
        """The camera's state as plain JSON types (floats round-trip exactly through json)."""
        camera = self._camera(camera_id)
        return {
            "version": STATE_VERSION,
            "camera_id": camera_id,
            "last_frame_id": camera.last_frame_id,
            "rules": [
                {"id": ev.rule.id, "type": ev.rule_type, "state": ev.to_state()}
                for ev in camera.evaluators
            ],
        }

    def load_state(self, camera_id: str, state: Mapping[str, Any]) -> None:
        """Replace the camera's state with a snapshot from `to_state`. Rules are matched by id and
        type: a rule added or changed since the snapshot starts fresh, a removed one is dropped.
        Raises ValueError (and keeps the current state) when the snapshot is unusable."""
        self._camera(camera_id)
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"alert state version {state.get('version')!r} is not {STATE_VERSION}")
        if state.get("camera_id") != camera_id:
            raise ValueError(f"alert state is for {state.get('camera_id')!r}, not {camera_id!r}")
        camera = self._fresh(camera_id)
        try:
            last = state["last_frame_id"]
            camera.last_frame_id = None if last is None else int(last)
            saved = {(r["id"], r["type"]): r["state"] for r in state["rules"]}
            for ev in camera.evaluators:
                if (ev.rule.id, ev.rule_type) in saved:
                    ev.load_state(saved[ev.rule.id, ev.rule_type])
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise ValueError(f"malformed alert state for {camera_id!r}: {exc!r}") from exc
        self._cameras[camera_id] = camera

    def _camera(self, camera_id: str) -> _Camera:
        try:
            return self._cameras[camera_id]
        except KeyError:
            raise KeyError(f"camera {camera_id!r} has no rules") from None

    def _fresh(self, camera_id: str) -> _Camera:
        defaults: Defaults = self.rules.defaults
        return _Camera(
            [
                _EVALUATORS[type(rule)](camera_id, rule, defaults)
                for rule in self.rules.cameras[camera_id].rules
            ]
        )
