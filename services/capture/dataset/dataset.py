"""Dataset: captured frames written at once as an Ultralytics YOLO dataset, COCO detection JSON
and Label Studio tasks, into one root (a directory or any fsspec URL).

Many writers: every capture replica writes into the same root. Per-image files (the JPEG, its
YOLO label and its JSON record, the source of truth) are named by camera, time and frame, and a
camera belongs to one replica at a time, so replicas never write the same file. The files that
hold many images (COCO, Label Studio) exist once per UTC day and are rebuilt from that day's
records, from every replica, by whichever replica wrote into the day since its last flush."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import orjson

from services.capture.captured import Captured
from services.capture.dataset import coco, labelstudio, yolo
from services.capture.dataset.record import DatasetError, ImageRecord, record_of
from services.capture.dataset.store import Store

log = logging.getLogger(__name__)

DATA_YAML = "data.yaml"
LABEL_CONFIG = "label_config.xml"
REBUILD_TRIES = 3  # per day and flush; a day still changing is left dirty for the next flush


@dataclass(frozen=True)
class _Rendered:
    """A record with its parts of the day files, made once per record and writer."""

    record: ImageRecord
    coco: coco.Entry
    task: dict[str, object]


def coco_file(day: str) -> str:
    return f"coco/{day}.json"


def tasks_file(day: str) -> str:
    return f"labelstudio/{day}.json"


class Dataset:
    """`add` writes a frame's own files at once; `flush` (about once a minute, and at shutdown)
    rebuilds the day files of the days this writer added to.

    A flush lists the day's records once (one prefix: records/<day>/), reads only the records it
    has not seen (other replicas'), rebuilds the two day files and lists again: if a record
    appeared meanwhile it rebuilds, so the last file written for a day includes every record
    whose writer flushed after writing it. Its cost grows with the records of the days being
    written (today, and yesterday just after midnight), never with the whole dataset."""

    def __init__(self, url: str, class_names: Sequence[str]) -> None:
        self.class_names = tuple(class_names)
        if not self.class_names or len(set(self.class_names)) != len(self.class_names):
            raise DatasetError(f"class names must be given, each once: {self.class_names}")
        self.store = Store(url)
        self._lock = threading.Lock()
        self._dirty: set[str] = set()
        self._seen: dict[str, dict[str, _Rendered]] = {}  # day -> record path -> rendered
        self._prepare()

    def add(self, captured: Captured) -> str:
        """Write the frame's image, YOLO label and record (last: a record means its image and
        label are complete); returns the image's path relative to the root. Adding the same
        frame again (a redelivered message) rewrites the same files with the same content.
        Raises DatasetError (UnknownClass for a class outside the dataset's) before writing."""
        record = record_of(captured, self.class_names)
        with self._lock:
            self.store.write(record.image, captured.jpeg)
            self.store.write(record.label, yolo.label_text(record).encode())
            self.store.write(record.record, record.model_dump_json(indent=1).encode())
            self._seen.setdefault(record.day, {})[record.record] = self._render(record)
            self._dirty.add(record.day)
        return record.image

    def flush(self) -> None:
        """Rebuild coco/<day>.json and labelstudio/<day>.json for the days added to since the
        last flush. A day that fails stays due; the error is raised after the others."""
        with self._lock:
            due, failure = sorted(self._dirty), None
            for day in due:
                try:
                    if self._rebuild(day):
                        self._dirty.discard(day)
                except Exception as exc:
                    log.warning("dataset day %s not rebuilt: %s", day, exc)
                    failure = failure or exc
            for day in set(self._seen) - self._dirty - set(due):
                del self._seen[day]  # not written since the flush before: no need to keep it
            if failure:
                raise failure

    def _rebuild(self, day: str) -> bool:
        seen = self._seen.setdefault(day, {})
        listed = self.store.records_below(f"records/{day}")
        for _ in range(REBUILD_TRIES):
            for gone in set(seen) - listed:  # removed by hand (a bad image): gone from files
                del seen[gone]
            for path, record in self.store.load_records(listed - set(seen)):
                seen[path] = self._render(record)
            day_files = sorted(seen.values(), key=lambda r: (r.record.capture_time, r.record.image))
            document = coco.document((r.coco for r in day_files), self.class_names)
            self._write_json(coco_file(day), document)
            self._write_json(tasks_file(day), [r.task for r in day_files])
            again = self.store.records_below(f"records/{day}")
            if again == listed:
                return True
            listed = again
        log.info("dataset day %s still changing after %d rebuilds", day, REBUILD_TRIES)
        return False

    def _render(self, record: ImageRecord) -> _Rendered:
        task = labelstudio.task(record, self.store.image_url(record.image))
        return _Rendered(record, coco.entry(record), task)

    def _write_json(self, rel: str, document: object) -> None:
        self.store.write(rel, orjson.dumps(document))  # 10x json's speed on 50 MB days

    def _prepare(self) -> None:
        """data.yaml and label_config.xml: written by every writer, identically. A root already
        holding another class list is refused: class ids would mean two things at once."""
        existing = self.store.read(DATA_YAML)
        if existing is not None:
            names = yolo.names_of(existing.decode())
            if names is not None and tuple(names) != self.class_names:
                raise DatasetError(
                    f"{self.store.url} holds a dataset of other classes ({len(names)}: "
                    f"{', '.join(names[:5])}, ...): use another root for this model"
                )
        text = yolo.data_yaml(self.class_names, self.store.local_root())
        if existing is None or existing.decode() != text:
            self.store.write(DATA_YAML, text.encode())
        self.store.write(LABEL_CONFIG, labelstudio.label_config(self.class_names).encode())
