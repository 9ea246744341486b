"""The rule file's schema: one pydantic model per rule type, strict about unknown keys.

Every field's docstring is its documentation (`use_attribute_docstrings`), so the JSON schema
(`RuleSet.model_json_schema()`) describes the file too. Coordinates are source-image pixels.
"""

from __future__ import annotations

import difflib
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from services.monitor.signals import NAMES as DRIFT_SIGNALS

Severity = Literal["info", "warning", "critical"]
Point = tuple[float, float]
RuleId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$", max_length=64)]
Seconds = Annotated[float, Field(ge=0)]


class _Strict(BaseModel):
    # Frozen: the engine shares these between evaluators; no inf/nan: they would poison timing.
    model_config = ConfigDict(
        extra="forbid", frozen=True, allow_inf_nan=False, use_attribute_docstrings=True
    )


def _polygon(points: tuple[Point, ...]) -> tuple[Point, ...]:
    if len(points) < 3:
        raise ValueError("at least 3 points")
    twice_area = sum(
        x1 * y2 - x2 * y1
        for (x1, y1), (x2, y2) in zip(points, points[1:] + points[:1], strict=True)
    )
    if twice_area == 0:
        raise ValueError("polygon has zero area (its points are on one line)")
    return points


class Defaults(_Strict):
    """Values a rule gets when it does not set its own."""

    cooldown_s: Seconds = 60.0
    """Minimum time between two firings of one rule for the same subject (the same track for
    zone_intrusion, the camera for occupancy/input_quality/camera_silent). An episode that
    becomes due inside the cooldown fires once the cooldown is over, if it still holds."""
    severity: Severity = "warning"
    """info, warning or critical."""


class RuleBase(_Strict):
    """What all rule types have."""

    id: RuleId
    """Unique per camera; part of every alert id, so keep it stable across edits."""
    severity: Severity | None = None
    """Overrides defaults.severity."""
    cooldown_s: Seconds | None = None
    """Overrides defaults.cooldown_s (line_crossing, forbidden_class and drift ignore it: they
    fire once per crossing, once per track and once per drift episode)."""


class _TrackRule(RuleBase):
    classes: tuple[str, ...] | None = None
    """Class names the rule applies to (e.g. [person, car]); all classes when absent."""

    @field_validator("classes")
    @classmethod
    def _some_classes(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is not None and not value:
            raise ValueError("an empty list matches nothing; leave classes out for all classes")
        return value


class ZoneIntrusion(_TrackRule):
    """A track's feet (bottom-centre of its box) stay inside `polygon` for `min_dwell_s`.

    Fires once per track per visit. Stepping out for less than `exit_grace_s` (a detector
    wobble, one bad box) does not end the visit nor restart the dwell clock.
    """

    type: Literal["zone_intrusion"]
    polygon: tuple[Point, ...]
    """The zone: at least 3 [x, y] points."""
    min_dwell_s: Seconds = 1.0
    """How long the track must be inside before it fires (0: on the first frame inside)."""
    exit_grace_s: Seconds = 0.5
    """How long the track must be out (or unseen) before the visit ends and it can re-fire."""

    _check_polygon = field_validator("polygon")(_polygon)


class LineCrossing(_TrackRule):
    """A track's feet cross the segment start-end. One firing per crossing, counted per class.

    Walking from `start` towards `end`, "in" is crossing from your left to your right as drawn on
    the image, "out" the other way. Passing around an end of the segment is not a crossing.
    """

    type: Literal["line_crossing"]
    start: Point
    """One end of the line, [x, y]."""
    end: Point
    """The other end of the line, [x, y]."""
    direction: Literal["both", "in", "out"] = "both"
    """Which crossings fire; the counts in the alert always include both directions."""
    dead_band_px: Annotated[float, Field(ge=0)] = 2.0
    """Feet closer than this to the line are on neither side (jitter on the line is no cross)."""
    min_frames: Annotated[int, Field(ge=1)] = 2
    """Consecutive observations on the new side needed before a crossing counts."""

    @field_validator("end")
    @classmethod
    def _not_a_point(cls, end: Point, info: ValidationInfo) -> Point:
        if info.data.get("start") == end:
            raise ValueError("end must differ from start")
        return end


class Occupancy(_TrackRule):
    """The number of tracks (inside `polygon`, if given) is above or below a threshold for
    `for_s`. Fires once per episode; re-arms after the condition has cleared for `clear_s`."""

    type: Literal["occupancy"]
    polygon: tuple[Point, ...] | None = None
    """Count only tracks whose feet are inside; the whole image when absent."""
    above: Annotated[int, Field(ge=0)] | None = None
    """Fire when the count is greater than this (set exactly one of above/below)."""
    below: Annotated[int, Field(ge=1)] | None = None
    """Fire when the count is less than this."""
    for_s: Seconds = 2.0
    """How long the condition must hold before it fires."""
    clear_s: Seconds = 0.5
    """How long the condition must be false before the episode ends (hysteresis)."""

    @field_validator("polygon")
    @classmethod
    def _check_polygon(cls, value: tuple[Point, ...] | None) -> tuple[Point, ...] | None:
        return None if value is None else _polygon(value)

    @model_validator(mode="after")
    def _one_threshold(self) -> Occupancy:
        if (self.above is None) == (self.below is None):
            raise ValueError("set exactly one of above and below")
        return self


class ForbiddenClass(_TrackRule):
    """A track of one of `classes` is seen for `for_s`. Fires once per track."""

    type: Literal["forbidden_class"]
    classes: tuple[str, ...]  # type: ignore[assignment]  # required here, optional elsewhere
    """The forbidden class names."""
    for_s: Seconds = 0.5
    """How long the track must be seen before it fires (filters one-frame misdetections)."""
    clear_s: Seconds = 0.5
    """How long a track may be unseen or another class without restarting `for_s`."""


class CameraSilent(RuleBase):
    """No frame from the camera for `after_s` (checked by `AlertEngine.check_silence`).
    Fires once per silence; a new frame ends it."""

    type: Literal["camera_silent"]
    after_s: Annotated[float, Field(gt=0)] = 10.0
    """Seconds without a frame after which the camera counts as silent."""


class InputQuality(RuleBase):
    """The picture is too dark or too blurry for `for_s`: brightness < `min_brightness` or
    sharpness < `min_sharpness` (preprocess's measures). Fires once per episode."""

    type: Literal["input_quality"]
    min_brightness: Annotated[float, Field(ge=0, le=255)] | None = None
    """Mean luma, 0..255 (a normal daytime scene reads about 100-150)."""
    min_sharpness: Annotated[float, Field(ge=0)] | None = None
    """Variance of the Laplacian on preprocess's 160 px grey copy (sharp scenes: hundreds to
    thousands; 20 is a heavily defocused or fogged lens)."""
    for_s: Seconds = 5.0
    """How long the picture must be bad before it fires."""
    clear_s: Seconds = 0.5
    """How long the picture must be good before the episode ends."""

    @model_validator(mode="after")
    def _some_threshold(self) -> InputQuality:
        if self.min_brightness is None and self.min_sharpness is None:
            raise ValueError("set min_brightness, min_sharpness or both")
        return self


def _signal_name(name: str) -> str:
    if name not in DRIFT_SIGNALS:
        close = difflib.get_close_matches(name, DRIFT_SIGNALS, n=1)
        hint = (
            f"did you mean {close[0]!r}?"
            if close
            else f"expected one of {', '.join(DRIFT_SIGNALS)}"
        )
        raise ValueError(f"unknown drift signal {name!r} ({hint})")
    return name


# The schema (the chart's values.schema.json) lists the names; the validator says which is near.
SignalName = Annotated[
    str,
    AfterValidator(_signal_name),
    WithJsonSchema({"enum": list(DRIFT_SIGNALS), "type": "string"}),
]


class Drift(RuleBase):
    """The camera's picture drifted from the reference the monitor service learned (moved,
    covered, blurred, darker): one FIRING alert per drift episode, when it starts, with a
    snapshot of the frame that started it, and a RESOLVED alert when the episode ends."""

    type: Literal["drift"]
    signals: tuple[SignalName, ...] | None = None
    """Fire only when one of these signals is over its threshold (e.g. [brightness,
    thumb_dist]); any signal when absent. The names: services/monitor/signals.py."""

    @field_validator("signals")
    @classmethod
    def _some_signals(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is not None and not value:
            raise ValueError("an empty list matches nothing; leave signals out for every signal")
        return value


Rule = Annotated[
    ZoneIntrusion | LineCrossing | Occupancy | ForbiddenClass | CameraSilent | InputQuality | Drift,
    Field(discriminator="type"),
]
RULE_TYPES: dict[str, type[RuleBase]] = {
    "zone_intrusion": ZoneIntrusion,
    "line_crossing": LineCrossing,
    "occupancy": Occupancy,
    "forbidden_class": ForbiddenClass,
    "camera_silent": CameraSilent,
    "input_quality": InputQuality,
    "drift": Drift,
}


class CameraRules(_Strict):
    """The rules of one camera, evaluated in file order."""

    rules: tuple[Rule, ...] = ()


class RuleSet(_Strict):
    """A whole rule file."""

    defaults: Defaults = Defaults()
    cameras: dict[Annotated[str, StringConstraints(min_length=1)], CameraRules]
    """Camera id (as ingest names it) to its rules."""
