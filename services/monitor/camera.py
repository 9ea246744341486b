"""One camera's drift test: learn a reference, then one CUSUM per signal against it.

Learning: the first `warmup_frames` frames give the reference (median and
robust spread per signal, floored; the mean colour and median edge grid and thumbnail), and the
thresholds are calibrated from them (calibration.py). A new model version learns afresh.

Testing: z = (signal - centre) / scale, clipped; per signal the CUSUM sums of z - allowance
upwards and of -z - allowance downwards (upwards only for the distances). The first sum over its
threshold opens an episode: one STARTED change naming the signals over their threshold. The
episode ends (one ENDED change, sums reset) once every signal's mean z over the last
END_WINDOW frames has stayed within the allowance for `end_calm_frames` frames.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from services.monitor import calibration
from services.monitor.settings import MonitorSettings
from services.monitor.signals import FLOORS, NAMES, UPWARD, Frame, Layout
from steadyeye.v1.common_pb2 import FrameQuality

END_WINDOW = 30  # frames whose mean z must be back within the allowance
MAD_TO_SD = 1.4826


@dataclass(frozen=True)
class Evidence:
    name: str
    statistic: float
    threshold: float
    value: float
    reference: float
    scale: float


@dataclass(frozen=True)
class Change:
    """An episode started or ended."""

    started: bool
    event_id: str
    episode_start_frame_id: int
    evidence: list[Evidence]  # the signals over their threshold (started) or all (ended)
    also_moving: list[str]  # over half their threshold


@dataclass
class Reference:
    reference_id: str
    model_version: str
    layout: Layout
    centre: np.ndarray
    scale: np.ndarray
    threshold: np.ndarray


class CameraMonitor:
    def __init__(self, camera_id: str, settings: MonitorSettings) -> None:
        self.camera_id = camera_id
        self._s = settings
        self.warmup: list[Frame] = []
        self.reference: Reference | None = None
        self.last_frame_id = -1
        self._model_version = ""
        self._reset_test()

    def _reset_test(self) -> None:
        self.high = np.zeros(len(NAMES))
        self.low = np.zeros(len(NAMES))
        self._recent: deque[np.ndarray] = deque(maxlen=END_WINDOW)
        self._calm = 0
        self.episode_start: int | None = None

    @property
    def statistic(self) -> np.ndarray:
        return np.maximum(self.high, self.low)

    def observe(self, frame_id: int, quality: FrameQuality, model_version: str) -> Change | None:
        """One frame; a frame at or below the last one seen is a replay and changes nothing."""
        if frame_id <= self.last_frame_id:
            return None
        self.last_frame_id = frame_id
        if model_version != self._model_version:  # another model: another normal
            self._model_version = model_version
            self.warmup, self.reference = [], None
            self._reset_test()
        frame = Frame.of(quality)
        if self.reference is None:
            self.warmup.append(frame)
            if len(self.warmup) >= self._s.warmup_frames:
                self._learn(frame_id)
            return None
        return self._test(frame_id, frame)

    def _learn(self, frame_id: int) -> None:
        layout = Layout.learn(self.warmup)
        x = np.array([f.vector(layout) for f in self.warmup])
        centre = np.median(x, 0)
        scale = np.maximum(MAD_TO_SD * np.median(np.abs(x - centre), 0), FLOORS)
        z = np.clip((x - centre) / scale, -self._s.clip, self._s.clip)
        threshold = calibration.thresholds(
            z, UPWARD, self._s.allowance, self._s.ert_frames, self._s.min_threshold
        )
        reference_id = f"{self.camera_id}@{frame_id}/{self._model_version or 'unknown'}"
        self.reference = Reference(reference_id, self._model_version, layout, centre, scale,
                                   threshold)  # fmt: skip
        self.warmup = []

    def _test(self, frame_id: int, frame: Frame) -> Change | None:
        ref = self.reference
        assert ref is not None
        x = frame.vector(ref.layout)
        z = np.clip((x - ref.centre) / ref.scale, -self._s.clip, self._s.clip)
        k = self._s.allowance
        self.high = np.maximum(0.0, self.high + z - k)
        self.low = np.where(UPWARD, 0.0, np.maximum(0.0, self.low - z - k))
        statistic = self.statistic
        if self.episode_start is None:
            fired = np.flatnonzero(statistic > ref.threshold)
            if not len(fired):
                return None
            self.episode_start = frame_id
            self._recent.clear()
            self._calm = 0
            also = np.flatnonzero((statistic > ref.threshold / 2) & (statistic <= ref.threshold))
            evidence = self._evidence(fired, x)
            return Change(
                True, self._event_id(frame_id), frame_id, evidence, [NAMES[i] for i in also]
            )
        self._recent.append(z)
        calm = len(self._recent) == END_WINDOW and bool(
            (np.abs(np.mean(self._recent, 0)) < k).all()
        )
        self._calm = self._calm + 1 if calm else 0
        if self._calm < self._s.end_calm_frames:
            return None
        start = self.episode_start
        evidence = self._evidence(np.arange(len(NAMES)), x)
        self._reset_test()
        return Change(False, self._event_id(start), start, evidence, [])

    def _event_id(self, start_frame_id: int) -> str:
        assert self.reference is not None
        text = json.dumps([self.camera_id, self.reference.reference_id, start_frame_id])
        return hashlib.sha1(text.encode()).hexdigest()

    def _evidence(self, which: np.ndarray, x: np.ndarray) -> list[Evidence]:
        ref = self.reference
        assert ref is not None
        statistic = self.statistic
        columns = (statistic, ref.threshold, x, ref.centre, ref.scale)
        return [Evidence(NAMES[i], *(float(c[i]) for c in columns)) for i in which]

    # --- state in Redis, so a restarted or rebalanced monitor goes on where this one was ----

    def to_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "last_frame_id": self.last_frame_id,
            "model_version": self._model_version,
            "warmup": _pack_frames(self.warmup),
            "high": self.high.tolist(),
            "low": self.low.tolist(),
            "recent": [z.tolist() for z in self._recent],
            "calm": self._calm,
            "episode_start": self.episode_start,
        }
        if (ref := self.reference) is not None:
            state["reference"] = {
                "id": ref.reference_id,
                "model_version": ref.model_version,
                "hue": ref.layout.hue.tolist(),
                "edges": ref.layout.edges.tolist(),
                "thumbnail": ref.layout.thumbnail.tolist(),
                "centre": ref.centre.tolist(),
                "scale": ref.scale.tolist(),
                "threshold": ref.threshold.tolist(),
            }
        return state

    @classmethod
    def from_state(cls, camera_id: str, settings: MonitorSettings, state: dict) -> CameraMonitor:
        monitor = cls(camera_id, settings)
        monitor.last_frame_id = int(state["last_frame_id"])
        monitor._model_version = str(state["model_version"])
        monitor.warmup = _unpack_frames(state["warmup"])
        monitor.high, monitor.low = np.array(state["high"]), np.array(state["low"])
        monitor._recent.extend(np.array(z) for z in state["recent"])
        monitor._calm = int(state["calm"])
        monitor.episode_start = state["episode_start"]
        if (ref := state.get("reference")) is not None:
            layout = Layout(
                np.array(ref["hue"]), np.array(ref["edges"]), np.array(ref["thumbnail"])
            )
            monitor.reference = Reference(ref["id"], ref["model_version"], layout,
                                          np.array(ref["centre"]), np.array(ref["scale"]),
                                          np.array(ref["threshold"]))  # fmt: skip
        if len(monitor.high) != len(NAMES):
            raise ValueError(f"state has {len(monitor.high)} signals, this monitor {len(NAMES)}")
        return monitor


def _pack_frames(frames: list[Frame]) -> dict[str, str]:
    """A warm-up in progress, compactly: ~316 bytes a frame."""
    if not frames:
        return {}
    arrays = {
        "scalars": np.array([f.scalars for f in frames], np.float32),
        "hue": np.array([f.hue for f in frames], np.float32),
        "edges": np.array([f.edges for f in frames], np.uint8),
        "thumbnail": np.array([f.thumbnail for f in frames], np.uint8),
    }
    return {k: base64.b64encode(v.tobytes()).decode() for k, v in arrays.items()}


def _unpack_frames(packed: dict[str, str]) -> list[Frame]:
    if not packed:
        return []
    scalars = np.frombuffer(base64.b64decode(packed["scalars"]), np.float32).reshape(-1, 9)
    hue = np.frombuffer(base64.b64decode(packed["hue"]), np.float32).reshape(-1, 8)
    edges = np.frombuffer(base64.b64decode(packed["edges"]), np.uint8).reshape(-1, 48)
    thumbnail = np.frombuffer(base64.b64decode(packed["thumbnail"]), np.uint8).reshape(-1, 192)
    return [
        Frame(s.astype(float), h.astype(float), e.astype(float), t.astype(float))
        for s, h, e, t in zip(scalars, hue, edges, thumbnail, strict=True)
    ]
