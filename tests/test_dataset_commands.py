"""`steadyeye dataset stats` and `export` on a small dataset: two cameras, two days, two
reasons, read back through the command line as an operator would."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from pycocotools.coco import COCO

from services.capture.dataset import Dataset
from steadyeye.cli import main
from tests.capture_frames import CLASSES, WHEN, box, frame

# camera, frame, hours after WHEN, reason, boxes
FRAMES = [
    ("gate", 1, 0, "uncertain-people", (box(1, 1, 20, 20), box(30, 5, 60, 40, cls="car"))),
    ("gate", 2, 1, "uncertain-people", (box(1, 1, 20, 20),)),
    ("[red]lobby", 1, 0, "drift-burst", ()),
    ("[red]lobby", 2, 25, "drift-burst", (box(2, 2, 10, 10, cls="bicycle"),)),
    ("gate", 3, 26, "random", (box(1, 1, 20, 20, cls="car"),)),
]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    dataset = Dataset(str(tmp_path / "ds"), CLASSES)
    for camera, n, hours, reason, boxes in FRAMES:
        when = WHEN + timedelta(hours=hours)
        dataset.add(frame(camera_id=camera, frame_id=n, when=when, reason=reason, boxes=boxes))
    dataset.flush()
    return tmp_path / "ds"


def run(*args: str) -> str:
    result = CliRunner().invoke(main, ["dataset", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_stats_counts_images_per_reason_camera_and_day_and_boxes_per_class(root: Path) -> None:
    counts = json.loads(run("stats", str(root), "--json"))

    assert counts == {
        "images": 5,
        "boxes": 5,
        "candidates": 0,
        "by_reason": {"drift-burst": 2, "random": 1, "uncertain-people": 2},
        "by_camera": {"[red]lobby": 2, "gate": 3},
        "by_class": {"bicycle": 1, "car": 2, "person": 2},
        "by_day": {"2025-03-14": 3, "2025-03-15": 2},
    }


def test_stats_table_shows_camera_ids_as_text(root: Path) -> None:
    out = run("stats", str(root))

    assert "5 images, 5 boxes" in out
    for heading in ("by reason", "by camera", "by class", "by day"):
        assert heading in out
    assert "[red]lobby" in out  # printed as it is, not read as rich markup


@pytest.mark.parametrize(
    ("filters", "frames"),
    [
        pytest.param([], {("gate", 1), ("gate", 2), ("[red]lobby", 1), ("[red]lobby", 2),
                          ("gate", 3)}, id="all"),
        pytest.param(["--since", "2025-03-15"], {("[red]lobby", 2), ("gate", 3)}, id="since-day"),
        pytest.param(["--since", "2025-03-14T10:00:00Z"],
                     {("gate", 2), ("[red]lobby", 2), ("gate", 3)}, id="since-time"),
        pytest.param(["--camera", "gate"], {("gate", 1), ("gate", 2), ("gate", 3)}, id="camera"),
        pytest.param(["--camera", "gate", "--since", "2025-03-15"], {("gate", 3)}, id="both"),
        pytest.param(["--reason", "drift-burst"], {("[red]lobby", 1), ("[red]lobby", 2)},
                     id="reason"),
        pytest.param(["--camera", "nobody"], set(), id="unknown-camera"),
    ],
)  # fmt: skip
def test_stats_and_export_select_the_same_frames(
    root: Path, tmp_path: Path, filters: list[str], frames: set[tuple[str, int]]
) -> None:
    counts = json.loads(run("stats", str(root), "--json", *filters))
    run("export", str(root), "--format", "labelstudio", "--out", str(tmp_path / "out"), *filters)

    tasks = json.loads((tmp_path / "out" / "tasks.json").read_text())
    assert {(t["data"]["camera_id"], t["data"]["frame_id"]) for t in tasks} == frames
    assert counts["images"] == len(frames)


def test_export_yolo_is_a_self_contained_ultralytics_dataset(root: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert "exported 3 images" in run(
        "export", str(root), "--format", "yolo", "--camera", "gate", "--out", str(out)
    )

    data = yaml.safe_load((out / "data.yaml").read_text())
    assert data["path"] == str(out) and data["names"] == dict(enumerate(CLASSES))
    images = sorted((out / "images").rglob("*.jpg"))
    labels = sorted((out / "labels").rglob("*.txt"))
    assert [p.relative_to(out / "images").with_suffix("") for p in images] == [
        p.relative_to(out / "labels").with_suffix("") for p in labels
    ]
    assert sorted(len(p.read_text().splitlines()) for p in labels) == [1, 1, 2]
    assert not (out / "records").exists() and not (out / "coco").exists()


def test_export_coco_is_one_file_over_days_that_pycocotools_loads(
    root: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    run("export", str(root), "--format", "coco", "--out", str(out))

    coco = COCO(str(out / "annotations.json"))
    images = coco.loadImgs(coco.getImgIds())
    assert len(images) == 5 and len(coco.getAnnIds()) == 5
    assert {i["capture_time"][:10] for i in images} == {"2025-03-14", "2025-03-15"}
    assert all((out / i["file_name"]).read_bytes()[:2] == b"\xff\xd8" for i in images)


def test_export_labelstudio_writes_its_config_beside_the_tasks(root: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run("export", str(root), "--format", "labelstudio", "--out", str(out))

    assert (out / "label_config.xml").read_text() == (root / "label_config.xml").read_text()
    tasks = json.loads((out / "tasks.json").read_text())
    for task in tasks:
        relative = task["data"]["image"].removeprefix("/data/local-files/?d=")
        assert (out / relative).is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["export", "{root}", "--format", "coco", "--out", "{root}"], "not empty",
                     id="export-into-non-empty"),
        pytest.param(["export", "{empty}", "--format", "coco", "--out", "{tmp}/o"],
                     "not a Steadyeye dataset", id="export-from-non-dataset"),
        pytest.param(["export", "{root}", "--format", "voc", "--out", "{tmp}/o"], "voc",
                     id="unknown-format"),
        pytest.param(["stats", "{root}", "--since", "yesterday"], "ISO", id="bad-since"),
        pytest.param(["stats", "{tmp}/nowhere"], "not a Steadyeye dataset", id="stats-no-dataset"),
    ],
)  # fmt: skip
def test_command_mistakes_are_said_plainly(
    root: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    (tmp_path / "empty").mkdir()
    paths = {"root": str(root), "empty": str(tmp_path / "empty"), "tmp": str(tmp_path)}
    result = CliRunner().invoke(main, ["dataset", *(a.format(**paths) for a in args)])

    assert result.exit_code != 0
    assert message in result.output
    assert not (tmp_path / "o").exists()
