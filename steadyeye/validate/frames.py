"""The frames a candidate is validated on: a video, a folder of images, or the images a COCO
labels file names."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from steadyeye.validate.request import Request, UsageError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


class FramesError(Exception):
    """The frames or labels cannot be read (exit code 2)."""


@dataclass(frozen=True)
class FrameSource:
    """Frames by index: a video (decoded in order) or a list of image files."""

    description: str
    video: Path | None = None
    images: tuple[Path, ...] = ()
    image_ids: tuple[int, ...] = ()  # COCO image ids, when the frames come from labels
    limit: int | None = None

    def __iter__(self) -> Iterator[tuple[int, str, np.ndarray]]:
        """(index, name, BGR image) for each readable frame, up to `limit`."""
        if self.video is not None:
            capture = cv2.VideoCapture(str(self.video))
            try:
                index = 0
                while self.limit is None or index < self.limit:
                    ok, image = capture.read()
                    if not ok:
                        break
                    yield index, f"{self.video.name}#{index}", image
                    index += 1
            finally:
                capture.release()
            return
        for index, path in enumerate(self.images[: self.limit]):
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is None:
                raise FramesError(f"{path}: not an image OpenCV can read")
            yield index, path.name, image

    def read(self, wanted: set[int]) -> dict[int, np.ndarray]:
        """The frames at these indices (the report's images), read again."""
        found: dict[int, np.ndarray] = {}
        if self.video is None:
            for index in wanted:
                image = cv2.imread(str(self.images[index]), cv2.IMREAD_COLOR)
                if image is not None:
                    found[index] = image
            return found
        last = max(wanted, default=-1)
        for index, _, image in self:
            if index in wanted:
                found[index] = image
            if index >= last:
                break
        return found


def open_frames(path: Path, limit: int | None) -> FrameSource:
    if path.is_dir():
        images = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if not images:
            raise FramesError(f"{path}: no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        return FrameSource(f"{path} ({len(images)} images)", images=tuple(images), limit=limit)
    if not path.is_file():
        raise FramesError(f"{path}: no such file or directory")
    capture = cv2.VideoCapture(str(path))
    ok = capture.isOpened() and capture.read()[0]
    capture.release()
    if not ok:
        raise FramesError(f"{path}: not a video OpenCV can read")
    return FrameSource(str(path), video=path, limit=limit)


def labelled_frames(labels: Path, root: Path | None, limit: int | None) -> tuple[FrameSource, dict]:
    """The images a COCO detection file names, found under `root` (--frames DIR), else beside
    the file or one level up (a capture dataset's coco/<day>.json names images/...)."""
    try:
        document = json.loads(labels.read_text())
    except (OSError, ValueError) as exc:
        raise FramesError(f"{labels}: not a readable COCO JSON file ({exc})") from None
    if not isinstance(document, dict) or not {"images", "annotations", "categories"} <= set(
        document
    ):
        raise FramesError(f"{labels}: a COCO file needs images, annotations and categories")
    roots = [root] if root is not None else [labels.parent, labels.parent.parent]
    paths, ids = [], []
    for image in document["images"]:
        name = image.get("file_name", "")
        found = next((r / name for r in roots if (r / name).is_file()), None)
        if found is None:
            raise FramesError(
                f"{labels}: image {name!r} not found under {' or '.join(map(str, roots))}; "
                "give the images' folder with --frames DIR"
            )
        paths.append(found)
        ids.append(int(image["id"]))
    if not paths:
        raise FramesError(f"{labels}: no images")
    source = FrameSource(
        f"{len(paths)} labelled images of {labels}",
        images=tuple(paths),
        image_ids=tuple(ids),
        limit=limit,
    )
    return source, document


def requested_frames(request: Request) -> tuple[FrameSource, dict | None]:
    """The frames to validate on, and the COCO labels when --labels was given: the labelled
    images, else --frames, else the sample clip."""
    if request.labels is not None:
        if request.frames is not None and not request.frames.is_dir():
            raise UsageError("with --labels, --frames must be the labelled images' folder")
        return labelled_frames(request.labels, request.frames, request.max_frames)
    if request.frames is None:
        from services.core.settings import load
        from steadyeye.assets import MediaSettings, media_file

        return open_frames(media_file(load(MediaSettings), "vtest.avi"), request.max_frames), None
    return open_frames(request.frames, request.max_frames), None
