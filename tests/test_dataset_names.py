"""A camera id is untrusted text: whatever it holds, the capture dataset writes inside its root,
in a folder no other camera shares, under a name every tool reads as an ordinary folder."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from services.capture.dataset import Dataset
from services.capture.dataset.names import camera_dir, frame_paths
from tests.capture_frames import CLASSES, WHEN, frame

HOSTILE = [
    "../../etc",
    "..",
    ".",
    "/etc/passwd",
    "a/b",
    "a\\b",
    "C:\\Windows\\system32",
    "%2e%2e%2f%2e%2e%2fetc",
    "images",
    "labels",
    "records",
    "",
    " ",
    "\x00",
    "a\nb",
    "камера-1",
    "摄像头",
    "📷",
    "CON",
    "x" * 10_000,
    "x" * 10_001,
    "Cam-1",
    "cam-1",
    "cam 1",
    "cam_1",
    "cam-1-" + camera_dir("cam-1").rsplit("-", 1)[1],  # a camera named like another's folder
]

SAFE_PART = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


@pytest.mark.parametrize("camera_id", HOSTILE, ids=lambda c: repr(c)[:24])
def test_a_camera_id_becomes_one_plain_folder_name(camera_id: str) -> None:
    folder = camera_dir(camera_id)

    assert SAFE_PART.match(folder), folder
    assert len(folder) <= 40 + 1 + 12
    assert folder not in {"images", "labels", "records", "coco", "labelstudio"}
    for rel in vars(frame_paths(camera_id, 7, WHEN, "uncertain-people")).values():
        parts = rel.split("/")
        assert parts[1 if parts[0] != "records" else 2] == folder
        assert all(part not in {"", ".", ".."} for part in parts)


def test_no_two_camera_ids_share_a_folder() -> None:
    folders = [camera_dir(c) for c in HOSTILE]
    assert len(set(folders)) == len(set(HOSTILE))


@pytest.mark.parametrize(
    "reason", ["uncertain-people", "../../x", "a/b", "Count > 5", "", "ñ" * 300, "images"]
)
def test_a_reason_is_a_plain_part_of_the_file_name(reason: str) -> None:
    stem = Path(frame_paths("cam-1", 7, WHEN, reason).image).stem
    assert SAFE_PART.match(stem) and len(stem) <= 100


def test_a_dataset_of_hostile_cameras_writes_only_inside_its_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    dataset = Dataset(str(root), CLASSES)
    for n, camera_id in enumerate(HOSTILE):
        dataset.add(frame(camera_id=camera_id, frame_id=n))
    dataset.flush()

    assert [p.name for p in tmp_path.iterdir()] == ["root"]
    written = [Path(dirpath, name) for dirpath, _, names in os.walk(root) for name in names]
    assert all(p.resolve().is_relative_to(root.resolve()) for p in written)
    assert len(list((root / "images").rglob("*.jpg"))) == len(HOSTILE)
    assert len({p.parent.parent for p in (root / "images").rglob("*.jpg")}) == len(set(HOSTILE))
    records = [json.loads(p.read_text()) for p in (root / "records").rglob("*.json")]
    assert sorted(r["camera_id"] for r in records) == sorted(HOSTILE)  # each id kept exactly
