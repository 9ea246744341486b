"""Reading a dataset back: select records (by time, camera, reason), count them, and export a
filtered copy in one layout. Used by `steadyeye dataset`."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson

from services.capture.dataset import coco, labelstudio, yolo
from services.capture.dataset.dataset import DATA_YAML, LABEL_CONFIG
from services.capture.dataset.names import camera_dir, day
from services.capture.dataset.record import DatasetError, ImageRecord
from services.capture.dataset.store import Store

FORMATS = ("yolo", "coco", "labelstudio")


@dataclass(frozen=True)
class Selection:
    since: datetime | None = None  # aware; records captured at or after it
    cameras: frozenset[str] = frozenset()  # exact camera ids; empty: all
    reasons: frozenset[str] = frozenset()

    def keeps(self, record: ImageRecord) -> bool:
        return (
            (self.since is None or record.capture_time >= self.since)
            and (not self.cameras or record.camera_id in self.cameras)
            and (not self.reasons or record.reason in self.reasons)
        )


def parse_since(text: str) -> datetime:
    """An ISO date or date-time; without a zone it is UTC."""
    when = datetime.fromisoformat(text)
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when


def class_names(store: Store) -> list[str]:
    raw = store.read(DATA_YAML)
    names = yolo.names_of(raw.decode()) if raw is not None else None
    if names is None:
        raise DatasetError(f"{store.url} is not a Steadyeye dataset (no {DATA_YAML} with names)")
    return names


def select(store: Store, selection: Selection) -> Iterator[ImageRecord]:
    """Lists only the days from `since` on and, with cameras named, only their folders."""
    first = day(selection.since) if selection.since else ""
    for date in store.subdirs("records"):
        if date < first:
            continue
        if selection.cameras:
            folders = [f"records/{date}/{camera_dir(c)}" for c in sorted(selection.cameras)]
        else:
            folders = [f"records/{date}"]
        paths = set().union(*(store.records_below(f) for f in folders))
        for _, record in store.load_records(paths):
            if selection.keeps(record):
                yield record


@dataclass
class Stats:
    images: int = 0
    boxes: int = 0
    candidates: int = 0
    by_reason: Counter[str] = field(default_factory=Counter)
    by_camera: Counter[str] = field(default_factory=Counter)
    by_class: Counter[str] = field(default_factory=Counter)  # served boxes
    by_day: Counter[str] = field(default_factory=Counter)

    def add(self, record: ImageRecord) -> None:
        self.images += 1
        self.boxes += len(record.boxes)
        self.candidates += len(record.candidates)
        self.by_reason[record.reason] += 1
        self.by_camera[record.camera_id] += 1
        self.by_day[record.day] += 1
        self.by_class.update(box.class_name for box in record.boxes)

    def as_dict(self) -> dict[str, object]:
        counts = {name: dict(sorted(getattr(self, name).items()))
                  for name in ("by_reason", "by_camera", "by_class", "by_day")}  # fmt: skip
        return {"images": self.images, "boxes": self.boxes, "candidates": self.candidates} | counts


def stats(store: Store, selection: Selection = Selection()) -> Stats:
    class_names(store)  # a folder that is no dataset is said to be one, not counted as empty
    result = Stats()
    for record in select(store, selection):
        result.add(record)
    return result


def export(source: Store, out: Store, fmt: str, selection: Selection = Selection()) -> int:
    """Copy the selected images into `out` with one layout's files; returns the image count.
    The labels are rebuilt from the records, so the copy is consistent whatever its source."""
    if fmt not in FORMATS:
        raise DatasetError(f"unknown format {fmt!r}: one of {', '.join(FORMATS)}")
    names = class_names(source)
    records: list[ImageRecord] = []
    for record in select(source, selection):
        image = source.read(record.image)
        if image is None:  # a record is written last, so only a hand-deleted image is missing
            continue
        out.write(record.image, image)
        if fmt == "yolo":
            out.write(record.label, yolo.label_text(record).encode())
        records.append(record)
    records.sort(key=lambda r: (r.capture_time, r.image))
    if fmt == "yolo":
        out.write(DATA_YAML, yolo.data_yaml(names, out.local_root()).encode())
    elif fmt == "coco":
        _write_json(out, "annotations.json", coco.document(map(coco.entry, records), names))
    else:
        tasks = [labelstudio.task(r, out.image_url(r.image)) for r in records]
        _write_json(out, "tasks.json", tasks)
        out.write(LABEL_CONFIG, labelstudio.label_config(names).encode())
    return len(records)


def _write_json(store: Store, rel: str, document: object) -> None:
    store.write(rel, orjson.dumps(document, option=orjson.OPT_INDENT_2))


def summary_rows(counter: Counter[str], by_key: bool = False) -> Sequence[tuple[str, int]]:
    """Most first (days: in order)."""
    return sorted(counter.items(), key=lambda kv: kv[0] if by_key else (-kv[1], kv[0]))
