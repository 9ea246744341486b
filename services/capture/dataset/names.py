"""Where a captured frame's files go. Every path component is built here, from a slug of the text
plus, for untrusted text, a hash of its exact bytes: `../../etc`, `a/b`, `Cam 1` and `cam-1`
each get a directory of their own inside the dataset root, and never a name a tool treats
specially (Ultralytics maps `.../images/...` to `.../labels/...` by the last `images` in the
path, so no component of ours may be called `images`)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from slugify import slugify

SLUG_CHARS = 40
HASH_HEX = 12  # 48 bits: no collision in practice among the cameras of any site


def short_hash(text: str) -> str:
    return hashlib.blake2b(
        text.encode("utf-8", "surrogatepass"), digest_size=HASH_HEX // 2
    ).hexdigest()


def slug(text: str) -> str:
    """Lowercase ASCII letters, digits and single hyphens (unicode transliterated), at most 40."""
    return slugify(text, max_length=SLUG_CHARS, word_boundary=False, lowercase=True) or "x"


def camera_dir(camera_id: str) -> str:
    """Always slug + hash: the id is untrusted, and case-insensitive filesystems exist."""
    return f"{slug(camera_id)}-{short_hash(camera_id)}"


def reason_part(reason: str) -> str:
    """A strategy name from the operator's file: kept as is when already a slug, else hashed too."""
    safe = slug(reason)
    return safe if safe == reason else f"{safe}-{short_hash(reason)[:8]}"


def day(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%d")


@dataclass(frozen=True)
class FramePaths:
    """The relative paths of one captured frame's files (POSIX separators, below the root)."""

    image: str
    label: str
    record: str


def frame_paths(camera_id: str, frame_id: int, capture_time: datetime, reason: str) -> FramePaths:
    """images/<camera>/<day>/<HHMMSSmmm>-<frame_id>-<reason>.jpg, and the same for labels/.

    The time of day sorts a folder chronologically and keeps frames apart when ingest restarts
    its frame counter; a redelivered message has the same capture time, so it lands on the same
    name and adding it again changes nothing. Records sit under their day first, so a flush
    lists one prefix to find a day's records from every replica."""
    when = capture_time.astimezone(UTC)
    stem = f"{when:%H%M%S}{when.microsecond // 1000:03d}-{int(frame_id)}-{reason_part(reason)}"
    camera, date = camera_dir(camera_id), day(when)
    return FramePaths(
        image=f"images/{camera}/{date}/{stem}.jpg",
        label=f"labels/{camera}/{date}/{stem}.txt",
        record=f"records/{date}/{camera}/{stem}.json",
    )
