"""The dataset root on any fsspec filesystem: local paths and file:// here, memory:// in tests,
s3:// and gs:// in production (install s3fs or gcsfs; credentials come from their usual
environment, or FSSPEC_S3_* / FSSPEC_GCS_* variables)."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterable, Iterator

import fsspec
from fsspec.implementations.local import LocalFileSystem
from pydantic import ValidationError

from services.capture.dataset.record import ImageRecord

log = logging.getLogger(__name__)

READ_BATCH = 512  # records fetched per request burst (remote filesystems fetch a batch at once)


class Store:
    def __init__(self, url: str) -> None:
        self.url = url
        self.fs, root = fsspec.core.url_to_fs(url)
        self.local = isinstance(self.fs, LocalFileSystem)
        self.root = (os.path.normpath(root) if self.local else root).rstrip("/") or "/"

    def path(self, rel: str) -> str:
        return f"{self.root}/{rel}"

    def local_root(self) -> str | None:
        return self.root if self.local else None

    def image_url(self, rel: str) -> str:
        """How Label Studio finds the image: a local dataset through its local-files serving
        (LOCAL_FILES_DOCUMENT_ROOT = the dataset root), a bucket through its own URL (served by
        a cloud storage connected to the project)."""
        if self.local:
            return f"/data/local-files/?d={rel}"
        return self.fs.unstrip_protocol(self.path(rel))

    def write(self, rel: str, data: bytes) -> None:
        """All or nothing for readers: a local file is written beside its name and renamed over
        it; an object store's put is atomic by itself (and has no cheap rename)."""
        final = self.path(rel)
        if not self.local:
            self.fs.pipe_file(final, data)
            return
        folder, name = final.rsplit("/", 1)
        os.makedirs(folder, exist_ok=True)
        temp = f"{folder}/.{name}.{uuid.uuid4().hex}.tmp"
        try:
            with open(temp, "xb") as out:
                out.write(data)
            os.replace(temp, final)
        except BaseException:
            if os.path.exists(temp):
                os.remove(temp)
            raise

    def read(self, rel: str) -> bytes | None:
        try:
            return self.fs.cat_file(self.path(rel))
        except FileNotFoundError:
            return None

    def subdirs(self, rel: str) -> list[str]:
        """Names of the folders directly below rel (none when it does not exist)."""
        try:
            entries = self.fs.ls(self.path(rel), detail=True)
        except FileNotFoundError:
            return []
        return sorted(e["name"].rstrip("/").rsplit("/", 1)[-1] for e in entries
                      if e["type"] == "directory")  # fmt: skip

    def records_below(self, rel: str) -> set[str]:
        """Relative paths of the record files below rel, never a temporary file."""
        top = self.path(rel)
        if self.local:  # os.walk: a tenth of fsspec's find, which stats every file
            found = (f"{d}/{n}" for d, _, names in os.walk(top) for n in names)
        else:
            try:
                found = iter(self.fs.find(top))
            except FileNotFoundError:
                return set()
        prefix = self.root.rstrip("/") + "/"
        return {p[len(prefix) :] for p in found
                if p.endswith(".json") and not p.rsplit("/", 1)[-1].startswith(".")}  # fmt: skip

    def load_records(self, rels: Iterable[str]) -> Iterator[tuple[str, ImageRecord]]:
        """The records, read in batches; one that does not parse (a newer writer's, a damaged
        file) is logged and skipped rather than stopping a flush or a command."""
        rels = sorted(rels)
        for start in range(0, len(rels), READ_BATCH):
            batch = rels[start : start + READ_BATCH]
            contents = self.fs.cat([self.path(r) for r in batch], on_error="return")
            for rel in batch:
                raw = contents.get(self.path(rel))
                if not isinstance(raw, bytes):
                    log.warning("dataset record %s unreadable: %s", rel, raw)
                    continue
                try:
                    yield rel, ImageRecord.model_validate_json(raw)
                except ValidationError as exc:
                    log.warning("dataset record %s skipped: %s", rel, exc)
