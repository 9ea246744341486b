"""The strategies file's schema, and what each strategy type matches in a frame.

Strategies are evaluated per frame in file order; the first that matches names the frame's
reason (one at any of its limits passes the frame on to the next). Each field's docstring is
its documentation (`StrategyFile.model_json_schema()`); examples/capture-strategies.yaml shows
every type.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from services.core.messages import CAMERA_ID

Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=64)]
CameraId = Annotated[str, StringConstraints(pattern=f"^(?:{CAMERA_ID.pattern})$")]
Score = Annotated[float, Field(ge=0, le=1)]
Fraction = Annotated[float, Field(ge=0, le=1)]
Count = Annotated[int, Field(ge=0)]
Details = dict[str, str]  # why a frame matched: Captured.extra


class _Strict(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, allow_inf_nan=False, use_attribute_docstrings=True
    )


# ---- what a strategy sees ----------------------------------------------------------------------


@dataclass(frozen=True)
class Seen:
    """One box of the frame, as far as strategies care."""

    class_name: str
    score: float


@dataclass(frozen=True)
class Episode:
    """A camera's open drift episode."""

    event_id: str
    start_frame: int


@dataclass(frozen=True)
class FrameFacts:
    camera_id: str
    frame_id: int
    served: tuple[Seen, ...]  # at or above the serving threshold
    candidates: tuple[Seen, ...] = ()  # below it (Detections.candidates)
    episode: Episode | None = None


@dataclass(frozen=True)
class Ended:
    """A track that ended, seen from its confirmation (`first`) to its last match (`last`)."""

    track_id: int
    first: int
    last: int


@dataclass(frozen=True)
class Switch:
    """A track that started overlapping where another was last seen, `gap` frames ago."""

    new_id: int
    old_id: int
    iou: float
    gap: int


@dataclass(frozen=True)
class ChurnFacts:
    """What a camera's tracks did in one frame (services.capture.churn)."""

    camera_id: str
    frame_id: int
    started: int = 0
    ended: tuple[Ended, ...] = ()  # only tracks whose confirmation was seen
    switches: tuple[Switch, ...] = ()


# ---- limits ------------------------------------------------------------------------------------

WINDOWS = {"minute": 60, "hour": 3600, "day": 86400}


class Window(_Strict):
    """Most frames per calendar minute, hour and day (UTC, of the frames' capture time)."""

    minute: Count | None = None
    hour: Count | None = None
    day: Count | None = None

    def items(self) -> list[tuple[str, int]]:
        return [(w, n) for w in WINDOWS if (n := getattr(self, w)) is not None]


class Limits(_Strict):
    """Shared by every replica (counted in Redis); a frame over any limit is not captured."""

    camera: Window | None = None
    """Per camera."""
    overall: Window | None = None
    """All cameras together."""

    def over(self, defaults: Limits) -> Limits:
        """These limits, each scope not set here taken from `defaults`."""
        return Limits(
            camera=self.camera if self.camera is not None else defaults.camera,
            overall=self.overall if self.overall is not None else defaults.overall,
        )

    @property
    def bounded(self) -> bool:
        return any(w is not None and w.items() for w in (self.camera, self.overall))


class Defaults(_Strict):
    limits: Limits = Limits()
    """Limits of every strategy that does not set its own (per scope: `camera`, `overall`)."""


# ---- the strategy types ------------------------------------------------------------------------


class StrategyBase(_Strict):
    name: Name
    """Unique; the frame's `reason` in the dataset. Keep it stable: limits count by it."""
    type: str
    """One of the types below (each a Literal there)."""
    limits: Limits | None = None
    """Overrides defaults.limits, scope by scope."""

    def match(self, frame: FrameFacts) -> Details | None:
        """Why the frame is taken, or None."""
        return None


def _classes_valid(classes: tuple[str, ...] | None) -> None:
    if classes is not None and not classes:
        raise ValueError("an empty list of classes matches nothing; leave it out for all classes")


class Random(StrategyBase):
    """A uniform sample: each frame with probability `percent`. The draw is a hash of the
    strategy, camera and frame, so a redelivered frame and every replica decide the same."""

    type: Literal["random"]
    percent: Annotated[float, Field(gt=0, le=100)]
    """Share of frames taken, in percent (0.5: one frame in 200)."""

    def match(self, frame: FrameFacts) -> Details | None:
        digest = hashlib.blake2b(
            f"{self.name}\0{frame.camera_id}\0{frame.frame_id}".encode(), digest_size=8
        ).digest()
        draw = int.from_bytes(digest, "big") / 2**64
        return {"percent": f"{self.percent:g}"} if draw < self.percent / 100 else None


class Uncertain(StrategyBase):
    """Frames with boxes the model is unsure about: a detection or a candidate (a box below the
    serving threshold, which nothing downstream sees) whose score is in `band`."""

    type: Literal["uncertain"]
    band: tuple[Score, Score] = (0.15, 0.35)
    """[low, high): scores from low up to, not including, high. Straddle the serving threshold
    (STEADYEYE_INFERENCE_MIN_SCORE, 0.25) to find what it alone would miss; candidates go down
    to STEADYEYE_INFERENCE_CANDIDATE_MIN_SCORE (0.1)."""
    classes: tuple[str, ...] | None = None
    """Only boxes of these classes; all classes when absent."""
    min_boxes: Annotated[int, Field(ge=1)] = 1
    """How many such boxes the frame needs."""

    @model_validator(mode="after")
    def _valid(self) -> Uncertain:
        if self.band[0] >= self.band[1]:
            raise ValueError(f"band {list(self.band)}: low must be below high")
        _classes_valid(self.classes)
        return self

    def match(self, frame: FrameFacts) -> Details | None:
        low, high = self.band
        served = sum(1 for b in self._of_classes(frame.served) if low <= b.score < high)
        below = sum(1 for b in self._of_classes(frame.candidates) if low <= b.score < high)
        if served + below < self.min_boxes:
            return None
        return {"band": f"[{low:g}, {high:g})", "served_in_band": str(served),
                "candidates_in_band": str(below)}  # fmt: skip

    def _of_classes(self, boxes: Iterable[Seen]) -> Iterable[Seen]:
        return (b for b in boxes if self.classes is None or b.class_name in self.classes)


class CountStrategy(StrategyBase):
    """Frames with more than `above`, or fewer than `below`, served detections."""

    type: Literal["count"]
    above: Count | None = None
    """Taken when the count is greater than this (set exactly one of above/below)."""
    below: Annotated[int, Field(ge=1)] | None = None
    """Taken when the count is less than this."""
    classes: tuple[str, ...] | None = None
    """Count only these classes; all classes when absent."""
    min_score: Score = 0.0
    """Count only detections scoring at least this."""

    @model_validator(mode="after")
    def _valid(self) -> CountStrategy:
        if (self.above is None) == (self.below is None):
            raise ValueError("set exactly one of above and below")
        _classes_valid(self.classes)
        return self

    def match(self, frame: FrameFacts) -> Details | None:
        count = sum(
            1
            for b in frame.served
            if b.score >= self.min_score and (self.classes is None or b.class_name in self.classes)
        )
        if self.above is not None and count > self.above:
            return {"count": str(count), "above": str(self.above)}
        if self.below is not None and count < self.below:
            return {"count": str(count), "below": str(self.below)}
        return None


class ClassesStrategy(StrategyBase):
    """Frames where any of `classes` is detected (rare classes, classes under review)."""

    type: Literal["classes"]
    classes: tuple[str, ...]
    """Class names of the model, e.g. [bicycle, dog]."""
    min_score: Score = 0.0
    """Only detections scoring at least this."""

    @model_validator(mode="after")
    def _valid(self) -> ClassesStrategy:
        _classes_valid(self.classes)
        return self

    def match(self, frame: FrameFacts) -> Details | None:
        present = sorted(
            {b.class_name for b in frame.served if b.score >= self.min_score} & set(self.classes)
        )
        return {"classes": ",".join(present)} if present else None


class DriftStrategy(StrategyBase):
    """A burst while the camera's drift episode is open (from the monitor's STARTED until its
    ENDED): the episode's first frame and every `every`-th after it, `max_frames` at most."""

    type: Literal["drift"]
    every: Annotated[int, Field(ge=1)] = 10
    """Take every this many frames of the episode."""
    max_frames: Annotated[int, Field(ge=1)] = 20
    """At most this many frames per episode."""

    def match(self, frame: FrameFacts) -> Details | None:
        episode = frame.episode
        if episode is None:
            return None
        step, rest = divmod(frame.frame_id - episode.start_frame, self.every)
        if step < 0 or rest or step >= self.max_frames:
            return None
        return {"episode_frame": str(frame.frame_id - episode.start_frame)}


class TrackChurn(StrategyBase):
    """Frames where tracking struggled, from the tracks topic: a track that ended after a short
    life (its last frame is taken), many tracks starting at once, or an id switch (a track
    starting where another was lost). Decided when the frame's tracks arrive, so only frames
    no other strategy took."""

    type: Literal["track_churn"]
    max_track_frames: Annotated[int, Field(ge=2)] | None = None
    """A track that ended having been matched over fewer than this many frames, counted from
    its confirmation (the tracker confirms after 2 hits) to its last match."""
    starts_above: Count | None = None
    """More than this many tracks starting in one frame."""
    switch_iou: Annotated[float, Field(gt=0, le=1)] | None = None
    """A track starting whose box overlaps the last box of a track lost in the previous
    `switch_within_frames` frames by at least this IoU."""
    switch_within_frames: Annotated[int, Field(ge=1)] = 10
    """How recently the other track must have been seen for an id switch."""

    @model_validator(mode="after")
    def _valid(self) -> TrackChurn:
        if self.max_track_frames is None and self.starts_above is None and self.switch_iou is None:
            raise ValueError("set at least one of max_track_frames, starts_above, switch_iou")
        return self

    def match_churn(self, churn: ChurnFacts) -> dict[int, Details]:
        """The frames to take (by frame id) and why."""
        found: dict[int, Details] = {}
        if self.max_track_frames is not None:
            for end in churn.ended:
                lived = end.last - end.first + 1
                if lived < self.max_track_frames:
                    found.setdefault(end.last, {"short_track": str(end.track_id),
                                                "lived_frames": str(lived)})  # fmt: skip
        if self.starts_above is not None and churn.started > self.starts_above:
            found.setdefault(churn.frame_id, {"track_starts": str(churn.started)})
        if self.switch_iou is not None:
            for switch in churn.switches:
                if switch.iou >= self.switch_iou and switch.gap <= self.switch_within_frames:
                    found.setdefault(churn.frame_id, {"id_switch": f"{switch.old_id}->"
                                                      f"{switch.new_id}",
                                                      "iou": f"{switch.iou:.2f}"})  # fmt: skip
                    break
        return found


Strategy = Annotated[
    Random | Uncertain | CountStrategy | ClassesStrategy | DriftStrategy | TrackChurn,
    Field(discriminator="type"),
]
STRATEGY_TYPES: dict[str, type[StrategyBase]] = {
    "random": Random,
    "uncertain": Uncertain,
    "count": CountStrategy,
    "classes": ClassesStrategy,
    "drift": DriftStrategy,
    "track_churn": TrackChurn,
}
# Known, not yet possible: the loader names why instead of "unknown type".
NOT_YET = {
    "disagreement": "needs a candidate model's shadow detections beside the serving model's, "
    "which the model rollout work will produce; Steadyeye does not produce them yet"
}


# ---- privacy and the file ----------------------------------------------------------------------


def _rectangle(rectangle: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    x1, y1, x2, y2 = rectangle
    if x1 >= x2 or y1 >= y2:
        raise ValueError("[x1, y1, x2, y2] with x1 < x2 and y1 < y2, in fractions of the frame")
    return rectangle


Rectangle = Annotated[tuple[Fraction, Fraction, Fraction, Fraction], AfterValidator(_rectangle)]


class StrategyFile(_Strict):
    defaults: Defaults = Defaults()
    strategies: Annotated[tuple[Strategy, ...], Field(min_length=1)]
    """Evaluated per frame in this order; the first that matches wins."""
    privacy: dict[CameraId, tuple[Rectangle, ...]] = {}
    """Per camera id, rectangles [x1, y1, x2, y2] in fractions of the frame (0..1, x right, y
    down) blacked out in every captured image of that camera."""

    def limits_of(self, strategy: StrategyBase) -> Limits:
        own = strategy.limits
        return self.defaults.limits if own is None else own.over(self.defaults.limits)

    @property
    def churn(self) -> tuple[TrackChurn, ...]:
        return tuple(s for s in self.strategies if isinstance(s, TrackChurn))

    @property
    def per_frame(self) -> tuple[StrategyBase, ...]:
        """The strategies decided from a frame's detections, in file order."""
        return tuple(s for s in self.strategies if not isinstance(s, TrackChurn))

    def class_names(self) -> set[str]:
        """Every class name the strategies mention."""
        return {c for s in self.strategies for c in getattr(s, "classes", None) or ()}
