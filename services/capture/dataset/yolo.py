"""Ultralytics YOLO detection layout: images/..., labels/... (same relative path, .txt), and
data.yaml (https://docs.ultralytics.com/datasets/detect/)."""

from __future__ import annotations

from collections.abc import Sequence

import yaml

from services.capture.dataset.record import ImageRecord


def label_text(record: ImageRecord) -> str:
    """One `class cx cy w h` line per served box, normalised to [0, 1] after clipping to the
    image. A frame with no box gets an empty file: a background image, said explicitly."""
    lines = []
    for box in record.boxes:
        clipped = box.clipped(record.width, record.height)
        if clipped is None:
            continue
        x1, y1, x2, y2 = clipped
        w, h = record.width, record.height
        cx, cy, bw, bh = (x1 + x2) / 2 / w, (y1 + y2) / 2 / h, (x2 - x1) / w, (y2 - y1) / h
        lines.append(f"{box.class_id} {cx:.6f} {cy:.6f} {bw:.6f} {bh:.6f}\n")
    return "".join(lines)


def data_yaml(class_names: Sequence[str], root: str | None) -> str:
    """`path` is the dataset root when it is a local directory; for a remote one it is left out,
    so that Ultralytics uses the folder of this file once the dataset is synced to disk. No split
    is made: every frame is waiting to be labelled, so train and val both name all images."""
    data: dict[str, object] = {"path": root} if root else {}
    data |= {"train": "images", "val": "images", "names": dict(enumerate(class_names))}
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def names_of(text: str) -> list[str] | None:
    """The class names of an existing data.yaml, in id order (None when it has none)."""
    names = (yaml.safe_load(text) or {}).get("names")
    if isinstance(names, dict):
        return [str(names[i]) for i in sorted(names)]
    return [str(n) for n in names] if isinstance(names, list) else None
