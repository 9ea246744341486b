"""One camera's drift test: learn a reference, then one CUSUM per signal against it.

Learning: the first `warmup_frames` frames give the reference (median and robust spread per
signal, floored; the mean colour and class mix, the median edge grid and thumbnail), and the
thresholds are calibrated from them (calibration.py). A new model version learns afresh; with
time-of-day buckets each bucket has its own reference. An operator may pin a reference learned
elsewhere (`steadyeye monitor pin`) or have the camera learn again (`steadyeye monitor accept`).

Testing: z = (signal - centre) / scale, clipped (a signal a frame has no value for, such as
box size on a frame without boxes, gives z = 0); per signal the CUSUM sums of z - allowance
upwards and of -z - allowance downwards (upwards only for the distances). The first sum over its
threshold opens an episode: one STARTED change naming the signals over their threshold. The
episode ends (one ENDED change, sums reset) once every signal's mean z over the last
END_WINDOW frames has stayed within the allowance for `end_calm_frames` frames.
"""

from __future__ import annotations

import base64
import hashlib
import json
import warnings
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from services.monitor import calibration
from services.monitor.settings import MonitorSettings
from services.monitor.signals import (
    FLOORS,
    IMAGE,
    NAMES,
    NEAR,
    SCALARS,
    UPWARD,
    Frame,
    Layout,
    boxes_of,
)
from steadyeye.v1.common_pb2 import FrameQuality
from steadyeye.v1.detections_pb2 import Detection

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
    reference_id: str
    episode_start_frame_id: int
    evidence: list[Evidence]  # the signals over their threshold (started) or all (ended)
    also_moving: list[str]  # over half their threshold
    note: str = ""  # why it ended, when not by itself


@dataclass(frozen=True)
class Point:
    """One tested frame: each signal's value, z against the reference, CUSUM / threshold."""

    frame_id: int
    values: np.ndarray
    z: np.ndarray
    ratio: np.ndarray


@dataclass
class Reference:
    reference_id: str
    model_version: str
    layout: Layout
    centre: np.ndarray
    scale: np.ndarray
    threshold: np.ndarray

    @classmethod
    def learn(
        cls, frames: list[Frame], reference_id: str, model_version: str, s: MonitorSettings
    ) -> Reference:
        """Centre, robust scale and calibrated thresholds per signal from these frames."""
        layout = Layout.learn(frames)
        x = np.array([f.vector(layout) for f in frames])
        with warnings.catch_warnings():  # a signal without any value in the warm-up
            warnings.simplefilter("ignore", RuntimeWarning)
            centre = np.nan_to_num(np.nanmedian(x, 0))
            spread = np.nan_to_num(np.nanmedian(np.abs(x - centre), 0))
        scale = np.maximum(MAD_TO_SD * spread, FLOORS)
        threshold = calibration.thresholds(
            _z(x, centre, scale, s.clip), UPWARD, s.allowance, s.ert_frames, s.min_threshold
        )
        return cls(reference_id, model_version, layout, centre, scale, threshold)

    def to_state(self) -> dict[str, Any]:
        layout = self.layout
        return {
            "id": self.reference_id,
            "model_version": self.model_version,
            "hue": layout.hue.tolist(),
            "edges": layout.edges.tolist(),
            "thumbnail": layout.thumbnail.tolist(),
            "classes": [[c, share] for c, share in layout.classes.items()],
            "centre": self.centre.tolist(),
            "scale": self.scale.tolist(),
            "threshold": self.threshold.tolist(),
        }

    @classmethod
    def from_state(cls, ref: dict[str, Any]) -> Reference:
        if len(ref["centre"]) != len(NAMES):
            raise ValueError(f"reference has {len(ref['centre'])} signals, not {len(NAMES)}")
        layout = Layout(np.array(ref["hue"]), np.array(ref["edges"]), np.array(ref["thumbnail"]),
                        {int(c): float(share) for c, share in ref["classes"]})  # fmt: skip
        return cls(ref["id"], ref["model_version"], layout, np.array(ref["centre"]),
                   np.array(ref["scale"]), np.array(ref["threshold"]))  # fmt: skip


def _z(x: np.ndarray, centre: np.ndarray, scale: np.ndarray, clip: float) -> np.ndarray:
    return np.nan_to_num(np.clip((x - centre) / scale, -clip, clip))  # NaN: no evidence


class CameraMonitor:
    def __init__(self, camera_id: str, settings: MonitorSettings) -> None:
        self.camera_id = camera_id
        self._s = settings
        self.references: dict[str, Reference] = {}  # per time-of-day bucket ("": all day)
        self.warmups: dict[str, list[Frame]] = {}
        self.bucket = ""
        self.last_frame_id = -1
        self.model_version = ""
        self._previous_boxes: np.ndarray | None = None
        self.last_point: Point | None = None
        self._reset_sums()
        self.episode_start: int | None = None

    def _reset_sums(self) -> None:
        self.high = np.zeros(len(NAMES))
        self.low = np.zeros(len(NAMES))
        self._recent: deque[np.ndarray] = deque(maxlen=END_WINDOW)
        self._calm = 0

    @property
    def reference(self) -> Reference | None:
        return self.references.get(self.bucket)

    @property
    def warmup(self) -> list[Frame]:
        return self.warmups.setdefault(self.bucket, [])

    @property
    def statistic(self) -> np.ndarray:
        return np.maximum(self.high, self.low)

    def observe(
        self,
        frame_id: int,
        quality: FrameQuality,
        model_version: str,
        detections: list[Detection] | None = None,
        size: tuple[int, int] = (0, 0),
        bucket: str = "",
        may_learn: bool = True,
        degraded: bool = False,
    ) -> Change | None:
        """One frame; a frame at or below the last one seen is a replay and changes nothing.
        With `may_learn` false a full warm-up waits (sliding on to the latest frames) rather
        than calibrate now: calibration takes ~2 s of CPU and the caller spreads it out.
        A `degraded` frame (answered by a fallback tier) is tested on its image signals only."""
        if frame_id <= self.last_frame_id:
            return None
        self.last_frame_id = frame_id
        change = None
        # A fallback's version says nothing of the watched model's (it may even read the same).
        if model_version != self.model_version and not degraded:  # another model: another normal
            change = self._restart(f"model version {model_version}: learning its reference")
            self._forget(model_version)
        if bucket != self.bucket:  # another time of day: its own reference, fresh sums
            self.bucket = bucket
            self._reset_sums()
        if degraded:
            # Another model's fewer, less sure boxes would read as the watched model drifting
            # (docs/design/degradation.md §4.5): its detections feed no sum, no warm-up (a
            # reference is learned from frames with every signal) and not box churn's previous
            # frame, so the primary's next frame is compared with the primary's last.
            if self.reference is None:
                return None
            return self._test(frame_id, Frame.of(quality), IMAGE)
        frame = Frame.of(quality, detections, size, self._previous_boxes, self._near_below)
        self._previous_boxes = boxes_of(detections or [], size)
        if self.reference is None:
            self.warmup.append(frame)
            if len(self.warmup) > self._s.warmup_frames:
                del self.warmup[0]
            if len(self.warmup) >= self._s.warmup_frames and may_learn:
                reference_id = f"{self.camera_id}@{frame_id}/{model_version or 'unknown'}"
                if bucket:
                    reference_id += f"/{bucket}"
                self.references[bucket] = Reference.learn(
                    self.warmup, reference_id, model_version, self._s
                )
                self.warmups.pop(bucket)
            return change
        return self._test(frame_id, frame)

    @property
    def _near_below(self) -> float:
        return self._s.score_threshold + NEAR

    def _test(self, frame_id: int, frame: Frame, fed: np.ndarray | None = None) -> Change | None:
        """`fed`: which signals this frame has (all by default); the others' sums stay."""
        ref = self.reference
        assert ref is not None
        fed = np.ones(len(NAMES), bool) if fed is None else fed
        x = np.where(fed, frame.vector(ref.layout), np.nan)
        z = _z(x, ref.centre, ref.scale, self._s.clip)
        k = self._s.allowance
        self.high = np.where(fed, np.maximum(0.0, self.high + z - k), self.high)
        self.low = np.where(fed, np.where(UPWARD, 0.0, np.maximum(0.0, self.low - z - k)), self.low)
        statistic = self.statistic
        self.last_point = Point(frame_id, x, z, statistic / ref.threshold)
        if self.episode_start is None:
            fired = np.flatnonzero(statistic > ref.threshold)
            if not len(fired):
                return None
            self.episode_start = frame_id
            self._recent.clear()
            self._calm = 0
            also = np.flatnonzero((statistic > ref.threshold / 2) & (statistic <= ref.threshold))
            evidence = self._evidence(fired, x)
            also_moving = [NAMES[i] for i in also]
            return Change(True, self._event_id(frame_id), ref.reference_id, frame_id, evidence,
                          also_moving)  # fmt: skip
        # NaN where not fed: an episode ends only on a window of frames that saw every signal.
        self._recent.append(np.where(fed, z, np.nan))
        calm = len(self._recent) == END_WINDOW and bool(
            (np.abs(np.mean(self._recent, 0)) < k).all()
        )
        self._calm = self._calm + 1 if calm else 0
        if self._calm < self._s.end_calm_frames:
            return None
        return self._end("")

    def _end(self, note: str) -> Change:
        start = self.episode_start
        assert start is not None and self.reference is not None
        x = self.last_point.values if self.last_point else self.reference.centre
        evidence = self._evidence(np.arange(len(NAMES)), x)
        event_id = self._event_id(start)
        self._reset_sums()
        self.episode_start = None
        return Change(False, event_id, self.reference.reference_id, start, evidence, [], note)

    # --- what an operator decides --------------------------------------------------------

    def pin(self, reference: Reference, bucket: str = "") -> Change | None:
        """From now on compare with `reference` in time-of-day `bucket`; an open episode ends
        when that is the bucket in force, as the operator has said what normal is."""
        change = self._restart("a reference was pinned") if bucket == self.bucket else None
        if reference.model_version != self.model_version:
            self._forget(reference.model_version)
        self.references[bucket] = reference
        self.warmups.pop(bucket, None)
        return change

    def relearn(self) -> Change | None:
        """The operator accepts what the camera sees now: learn the reference again from the
        next frames; an open episode ends."""
        change = self._restart("accepted: learning a new reference")
        self.references.pop(self.bucket, None)
        return change

    def _restart(self, note: str) -> Change | None:
        change = self._end(note) if self._episode_open() else None
        self.episode_start = None
        self._reset_sums()
        return change

    def _forget(self, model_version: str) -> None:
        self.model_version = model_version
        self.references, self.warmups = {}, {}

    def _episode_open(self) -> bool:
        return self.episode_start is not None and self.reference is not None

    def _event_id(self, start_frame_id: int) -> str:
        assert self.reference is not None
        text = json.dumps([self.camera_id, self.reference.reference_id, start_frame_id])
        return hashlib.sha1(text.encode()).hexdigest()

    def _evidence(self, which: np.ndarray, x: np.ndarray) -> list[Evidence]:
        ref = self.reference
        assert ref is not None
        statistic = self.statistic
        value = np.where(np.isnan(x), ref.centre, x)
        columns = (statistic, ref.threshold, value, ref.centre, ref.scale)
        return [Evidence(NAMES[i], *(float(c[i]) for c in columns)) for i in which]

    # --- state in Redis, so a restarted or rebalanced monitor goes on where this one was ----

    def to_state(self) -> dict[str, Any]:
        previous = self._previous_boxes
        return {
            "last_frame_id": self.last_frame_id,
            "model_version": self.model_version,
            "bucket": self.bucket,
            "warmups": {b: _pack_frames(w) for b, w in self.warmups.items() if w},
            "references": {b: r.to_state() for b, r in self.references.items()},
            "high": self.high.tolist(),
            "low": self.low.tolist(),
            "recent": [z.tolist() for z in self._recent],
            "calm": self._calm,
            "episode_start": self.episode_start,
            "previous_boxes": None if previous is None else previous.tolist(),
        }

    @classmethod
    def from_state(cls, camera_id: str, settings: MonitorSettings, state: dict) -> CameraMonitor:
        monitor = cls(camera_id, settings)
        monitor.last_frame_id = int(state["last_frame_id"])
        monitor.model_version = str(state["model_version"])
        monitor.bucket = str(state["bucket"])
        monitor.warmups = {b: _unpack_frames(w) for b, w in state["warmups"].items()}
        monitor.references = {b: Reference.from_state(r) for b, r in state["references"].items()}
        monitor.high, monitor.low = np.array(state["high"]), np.array(state["low"])
        monitor._recent.extend(np.array(z) for z in state["recent"])
        monitor._calm = int(state["calm"])
        monitor.episode_start = state["episode_start"]
        if (previous := state["previous_boxes"]) is not None:
            monitor._previous_boxes = np.array(previous, float).reshape(-1, 4)
        if len(monitor.high) != len(NAMES):
            raise ValueError(f"state has {len(monitor.high)} signals, this monitor {len(NAMES)}")
        return monitor


def _pack_frames(frames: list[Frame]) -> dict[str, Any]:
    """A warm-up in progress, compactly: ~350 bytes a frame."""
    arrays = {
        "scalars": np.array([f.scalars for f in frames], np.float32),
        "hue": np.array([f.hue for f in frames], np.float32),
        "edges": np.array([f.edges for f in frames], np.uint8),
        "thumbnail": np.array([f.thumbnail for f in frames], np.uint8),
    }
    packed: dict[str, Any] = {k: base64.b64encode(v.tobytes()).decode() for k, v in arrays.items()}
    packed["classes"] = [[[c, n] for c, n in f.classes.items()] for f in frames]
    return packed


def _unpack_frames(packed: dict[str, Any]) -> list[Frame]:
    def array(name: str, dtype: type, width: int) -> np.ndarray:
        return np.frombuffer(base64.b64decode(packed[name]), dtype).reshape(-1, width)

    columns = (
        array("scalars", np.float32, SCALARS),
        array("hue", np.float32, 8),
        array("edges", np.uint8, 48),
        array("thumbnail", np.uint8, 192),
        [{int(c): int(n) for c, n in pairs} for pairs in packed["classes"]],
    )
    return [
        Frame(s.astype(float), h.astype(float), e.astype(float), t.astype(float), classes)
        for s, h, e, t, classes in zip(*columns, strict=True)
    ]
