"""COCO object detection JSON (https://cocodataset.org/#format-data): the model's served boxes
as annotations with their `score`, so a labelling tool shows them as pre-annotations."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from services.capture.dataset.record import ImageRecord


def stable_id(text: str) -> int:
    """A 52-bit id from the text: the same image keeps its id when a day's file is rebuilt or
    several files are merged, and every id is exact as a JSON number (below 2**53)."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest()) >> 12


def categories(class_names: Sequence[str]) -> list[dict[str, object]]:
    """Category ids are the class ids of the model and of the YOLO labels (0-based)."""
    return [{"id": i, "name": name, "supercategory": ""} for i, name in enumerate(class_names)]


@dataclass(frozen=True)
class Entry:
    """One image of a COCO document with its annotations."""

    image: dict[str, object]
    annotations: list[dict[str, object]]


def entry(record: ImageRecord) -> Entry:
    image_id = stable_id(record.image)
    image = {
        "id": image_id,
        "file_name": record.image,  # relative to the dataset root: images/...
        "width": record.width,
        "height": record.height,
        "date_captured": record.capture_time.isoformat(),
        **record.metadata(),
        "extra": record.extra,
    }
    annotations = []
    for n, box in enumerate(record.boxes):
        clipped = box.clipped(record.width, record.height)
        if clipped is None:
            continue
        x1, y1, x2, y2 = clipped
        w, h = x2 - x1, y2 - y1
        annotations.append(
            {
                "id": stable_id(f"{record.image}#{n}"),
                "image_id": image_id,
                "category_id": box.class_id,
                "bbox": [round(x1, 2), round(y1, 2), round(w, 2), round(h, 2)],
                "area": round(w * h, 2),
                "iscrowd": 0,
                "segmentation": [],
                "score": round(box.score, 4),
            }
        )
    return Entry(image, annotations)


def document(entries: Iterable[Entry], class_names: Sequence[str]) -> dict[str, object]:
    entries = list(entries)
    return {
        "info": {
            "description": "Steadyeye: production frames chosen for labelling",
            "version": "1",
            "date_created": datetime.now(UTC).isoformat(),
        },
        "licenses": [],
        "images": [e.image for e in entries],
        "annotations": [a for e in entries for a in e.annotations],
        "categories": categories(class_names),
    }
