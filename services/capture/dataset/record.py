"""The per-image record: the source of truth for one captured frame. The layouts that live in
one file per day (COCO, Label Studio) are rebuilt from these; stats and export read them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC

from pydantic import AwareDatetime, BaseModel, ConfigDict, PositiveInt, ValidationError

from services.capture.captured import Box, Captured
from services.capture.dataset.names import day, frame_paths


class DatasetError(ValueError):
    """A frame or a dataset that cannot be written as asked (nothing was written)."""


class UnknownClass(DatasetError):
    """A box whose class is not among the dataset's classes: writing the frame without it would
    teach the next model that the object is background, so the frame is refused whole."""


class RecordBox(BaseModel):
    model_config = ConfigDict(frozen=True, allow_inf_nan=False)  # NaN has no place in a label

    x1: float
    y1: float
    x2: float
    y2: float
    score: float
    class_id: int  # an index into the dataset's class names (data.yaml), not the model's
    class_name: str

    def clipped(self, width: int, height: int) -> tuple[float, float, float, float] | None:
        """The box inside the image, or None when nothing of it is (no tool accepts it)."""
        x1, x2 = sorted((min(max(self.x1, 0.0), width), min(max(self.x2, 0.0), width)))
        y1, y2 = sorted((min(max(self.y1, 0.0), height), min(max(self.y2, 0.0), height)))
        return (x1, y1, x2, y2) if x2 > x1 and y2 > y1 else None


class ImageRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    schema_version: int = 1
    image: str  # relative to the dataset root, like every path here
    label: str
    record: str  # this record's own file
    camera_id: str
    frame_id: int
    capture_time: AwareDatetime
    reason: str
    strategy: str
    model_name: str
    model_version: str
    width: PositiveInt
    height: PositiveInt
    boxes: tuple[RecordBox, ...] = ()
    candidates: tuple[RecordBox, ...] = ()
    drift_event_id: str = ""
    extra: dict[str, str] = {}

    @property
    def day(self) -> str:
        return day(self.capture_time)

    def metadata(self) -> dict[str, object]:
        """What every layout carries per image, flat, for tools that show extra columns."""
        return {
            "camera_id": self.camera_id,
            "frame_id": self.frame_id,
            "capture_time": self.capture_time.isoformat(),
            "reason": self.reason,
            "strategy": self.strategy,
            "model_name": self.model_name,
            "model_version": self.model_version,
            "drift_event_id": self.drift_event_id,
        }


def record_of(captured: Captured, class_names: Sequence[str]) -> ImageRecord:
    """The frame's record, its boxes' classes mapped by name onto the dataset's."""
    if not captured.jpeg:
        raise DatasetError(f"frame {captured.frame_id} of {captured.camera_id!r} has no image")
    when = captured.capture_time
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    paths = frame_paths(captured.camera_id, captured.frame_id, when, captured.reason)
    ids = {name: i for i, name in enumerate(class_names)}

    def box(b: Box) -> RecordBox:
        name = (
            b.class_name
            or _name_at(captured.class_names, b.class_id)
            or _name_at(class_names, b.class_id)
        )
        if name not in ids:
            raise UnknownClass(
                f"class {name or b.class_id!r} of {captured.model_name}:{captured.model_version}"
                f" is not among the dataset's {len(class_names)} classes"
            )
        return RecordBox(x1=b.x1, y1=b.y1, x2=b.x2, y2=b.y2, score=b.score,
                         class_id=ids[name], class_name=name)  # fmt: skip

    try:
        record = ImageRecord(
            image=paths.image,
            label=paths.label,
            record=paths.record,
            camera_id=captured.camera_id,
            frame_id=captured.frame_id,
            capture_time=when,
            reason=captured.reason,
            strategy=captured.strategy,
            model_name=captured.model_name,
            model_version=captured.model_version,
            width=captured.width,
            height=captured.height,
            boxes=tuple(box(b) for b in captured.boxes),
            candidates=tuple(box(b) for b in captured.candidates),
            drift_event_id=captured.drift_event_id,
            extra=dict(captured.extra),
        )
    except ValidationError as exc:
        raise DatasetError(f"frame {captured.frame_id} of {captured.camera_id!r}: {exc}") from exc
    return record


def _name_at(names: Sequence[str], class_id: int) -> str:
    return names[class_id] if 0 <= class_id < len(names) else ""
