"""The capture dataset: one root holding an Ultralytics YOLO dataset, COCO detection JSON and
Label Studio tasks with predictions, each checked by the tools that read them (pycocotools,
Label Studio's converter) or against their documented format, and kept consistent with
several writers."""

from __future__ import annotations

import json
import uuid
import xml.etree.ElementTree as ET
from datetime import timedelta
from pathlib import Path

import cv2
import fsspec
import jsonschema
import numpy as np
import pytest
import yaml
from label_studio_converter import Converter
from pycocotools.coco import COCO

from services.capture.captured import Box
from services.capture.dataset import Dataset, DatasetError, UnknownClass
from tests.capture_frames import CLASSES, WHEN, box, frame
from tests.conftest import shared_file

DAY = "2025-03-14"


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def written(root: Path, *frames, flush: bool = True) -> Dataset:
    dataset = Dataset(str(root), CLASSES)
    for captured in frames:
        dataset.add(captured)
    if flush:
        dataset.flush()
    return dataset


def coco_of(root: Path, day: str = DAY) -> COCO:
    return COCO(str(root / "coco" / f"{day}.json"))


def tasks_of(root: Path, day: str = DAY) -> list[dict]:
    return json.loads((root / "labelstudio" / f"{day}.json").read_text())


# --- COCO -------------------------------------------------------------------------------------


def test_coco_json_loads_with_pycocotools_with_boxes_in_source_pixels(tmp_path: Path) -> None:
    written(tmp_path, frame(width=640, height=480, boxes=(
        box(100.5, 50.25, 300.75, 400.0, 0.91, "person"),
        box(500, 300, 639, 479, 0.42, "car"),
    )))  # fmt: skip

    coco = coco_of(tmp_path)

    (image,) = coco.loadImgs(coco.getImgIds())
    assert (image["width"], image["height"]) == (640, 480)
    assert (tmp_path / image["file_name"]).is_file()
    anns = coco.loadAnns(coco.getAnnIds(imgIds=[image["id"]]))
    by_class = {coco.loadCats(a["category_id"])[0]["name"]: a for a in anns}
    assert by_class["person"]["bbox"] == [100.5, 50.25, 200.25, 349.75]
    assert by_class["person"]["score"] == 0.91
    assert by_class["car"]["bbox"] == [500, 300, 139, 179]
    assert by_class["car"]["area"] == 139 * 179
    assert all(a["iscrowd"] == 0 for a in anns)
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == list(CLASSES)


def test_a_real_frame_read_back_from_the_dataset_is_detected_again_at_its_coco_boxes(
    tmp_path: Path, bus_jpg: bytes
) -> None:
    """The served boxes go in as the model gave them; the image is read back from the dataset
    by its COCO file_name, detected again independently, and every COCO box has a fresh
    detection of the same class at IoU >= 0.9: the boxes are in that image's pixels."""
    from steadyeye.local_model import LocalModel

    model = LocalModel(shared_file("models", "yolox_nano.onnx"), "yolox", tmp_path / "model")
    pixels = cv2.imdecode(np.frombuffer(bus_jpg, np.uint8), cv2.IMREAD_COLOR)
    served = tuple(Box(d.box.x1, d.box.y1, d.box.x2, d.box.y2, d.score, d.class_id,
                       d.class_name) for d in model.detect(pixels))  # fmt: skip
    assert len(served) >= 4  # the bus and the people in front of it
    names = model.contract.class_names
    dataset = Dataset(str(tmp_path / "ds"), names)
    dataset.add(frame(width=pixels.shape[1], height=pixels.shape[0], image=bus_jpg,
                      boxes=served, class_names=names))  # fmt: skip
    dataset.flush()

    coco = coco_of(tmp_path / "ds")
    (image,) = coco.loadImgs(coco.getImgIds())
    read_back = cv2.imread(str(tmp_path / "ds" / image["file_name"]))
    again = model.detect(read_back)
    anns = coco.loadAnns(coco.getAnnIds())

    assert len(anns) == len(served)
    for ann in anns:
        x, y, w, h = ann["bbox"]
        best = max(iou((x, y, x + w, y + h), (d.box.x1, d.box.y1, d.box.x2, d.box.y2))
                   for d in again if d.class_id == ann["category_id"])  # fmt: skip
        assert best >= 0.9, ann


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


# --- YOLO -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("boxes", "expected"),
    [
        pytest.param((box(16, 12, 48, 36),), ["0 0.500000 0.500000 0.500000 0.500000"],
                     id="inside"),
        pytest.param((box(-10, -5, 32, 24, cls="car"),), ["2 0.250000 0.250000 0.500000 0.500000"],
                     id="clipped-at-origin"),
        pytest.param((box(32, 24, 80, 60, cls="bicycle"),),
                     ["1 0.750000 0.750000 0.500000 0.500000"], id="clipped-at-far-edges"),
        pytest.param((box(48, 36, 16, 12),), ["0 0.500000 0.500000 0.500000 0.500000"],
                     id="corners-swapped"),
        pytest.param((box(70, 50, 90, 60), box(0, 0, 0, 10)), [], id="outside-or-empty-dropped"),
        pytest.param((), [], id="no-box-is-a-background-image"),
    ],
)  # fmt: skip
def test_yolo_labels_are_normalised_clipped_and_use_the_data_yaml_classes(
    tmp_path: Path, boxes: tuple[Box, ...], expected: list[str]
) -> None:
    written(tmp_path, frame(width=64, height=48, boxes=boxes))

    (label,) = (tmp_path / "labels").rglob("*.txt")
    assert label.read_text().splitlines() == expected


def test_yolo_dataset_is_what_ultralytics_reads(tmp_path: Path) -> None:
    """data.yaml as Ultralytics documents it, a label for every image at the path Ultralytics
    derives (the last /images/ replaced by /labels/), and the checks its label verifier makes
    (ultralytics.data.utils.verify_image_label: 5 columns, coordinates within [0, 1.01],
    nothing negative, class below the count of names). Ultralytics itself needs PyTorch."""
    written(tmp_path, *(frame(camera_id=cam, frame_id=n, boxes=(
        box(-3, 2, 20, 50, 0.5, "car"), box(10, 10, 30, 30, 0.7, "bicycle")))
        for n, cam in enumerate(["cam-1", "images", "labels/x"])))  # fmt: skip

    data = yaml.safe_load((tmp_path / "data.yaml").read_text())
    assert data["path"] == str(tmp_path)
    assert data["names"] == dict(enumerate(CLASSES))
    root = Path(data["path"])
    images = sorted((root / data["train"]).rglob("*.jpg"))
    assert (root / data["val"]).is_dir() and len(images) == 3
    for image in images:
        label = Path("/labels/".join(str(image).rsplit("/images/", 1))).with_suffix(".txt")
        rows = np.array([line.split() for line in label.read_text().splitlines()], np.float32)
        assert rows.shape == (2, 5)
        assert rows[:, 1:].max() <= 1.0 and rows.min() >= 0.0
        assert rows[:, 0].max() < len(data["names"])
        assert cv2.imread(str(image)).shape[:2] == (48, 64)


# --- Label Studio -----------------------------------------------------------------------------

# The task format as https://labelstud.io/guide/predictions and /guide/task_format document it
# for an image with RectangleLabels pre-annotations.
TASKS_SCHEMA = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["data", "predictions"],
        "properties": {
            "data": {"type": "object", "required": ["image"],
                     "properties": {"image": {"type": "string", "minLength": 1}}},
            "meta": {"type": "object"},
            "predictions": {"type": "array", "items": {
                "type": "object",
                "required": ["model_version", "score", "result"],
                "properties": {
                    "model_version": {"type": "string", "minLength": 1},
                    "score": {"type": "number", "minimum": 0, "maximum": 1},
                    "result": {"type": "array", "items": {
                        "type": "object",
                        "required": ["id", "type", "from_name", "to_name", "original_width",
                                     "original_height", "value"],
                        "properties": {
                            "id": {"type": "string", "minLength": 1},
                            "type": {"const": "rectanglelabels"},
                            "original_width": {"type": "integer", "minimum": 1},
                            "original_height": {"type": "integer", "minimum": 1},
                            "score": {"type": "number", "minimum": 0, "maximum": 1},
                            "value": {
                                "type": "object",
                                "required": ["x", "y", "width", "height", "rectanglelabels"],
                                "properties": {
                                    **{k: {"type": "number", "minimum": 0, "maximum": 100}
                                       for k in ("x", "y", "width", "height")},
                                    "rectanglelabels": {"type": "array", "minItems": 1,
                                                        "items": {"type": "string"}},
                                },
                            },
                        },
                    }},
                },
            }},
        },
    },
}  # fmt: skip


def test_label_studio_tasks_follow_the_documented_format_and_the_labelling_config(
    tmp_path: Path,
) -> None:
    written(tmp_path, frame(width=200, height=100, boxes=(box(20, 10, 80, 60, 0.9),
            box(150, 50, 260, 120, 0.6, "car"))))  # fmt: skip

    tasks = tasks_of(tmp_path)
    jsonschema.validate(tasks, TASKS_SCHEMA)
    config = ET.fromstring((tmp_path / "label_config.xml").read_text())
    (image_tag,) = config.iter("Image")
    (control,) = config.iter("RectangleLabels")
    assert control.get("toName") == image_tag.get("name")
    assert [label.get("value") for label in control.iter("Label")] == list(CLASSES)
    (task,) = tasks
    assert image_tag.get("value") == "$image" and task["data"]["image"].endswith(".jpg")
    (prediction,) = task["predictions"]
    assert prediction["model_version"] == "yolox_nano:1"
    assert prediction["score"] == pytest.approx(0.75)
    person, car = prediction["result"]
    for region in (person, car):
        assert (region["from_name"], region["to_name"]) == (control.get("name"), "image")
        assert (region["original_width"], region["original_height"]) == (200, 100)
        assert region["value"]["x"] + region["value"]["width"] <= 100 + 1e-9
    assert person["value"] | {} == {"x": 10.0, "y": 10.0, "width": 30.0, "height": 50.0,
                                    "rotation": 0, "rectanglelabels": ["person"]}  # fmt: skip
    assert car["value"]["x"] == 75.0 and car["value"]["width"] == 25.0  # clipped at the edge


def test_label_studio_converter_reads_the_tasks_back_to_the_same_pixel_boxes(
    tmp_path: Path,
) -> None:
    """Label Studio's own converter (the one its COCO export used) parses our labelling config
    and reads our rectangles; an annotator accepting the prediction makes it the annotation,
    so the converter gets the prediction's result as the annotation's."""
    written(tmp_path / "ds", frame(width=640, height=480, boxes=(
        box(100, 50, 300, 400, 0.9), box(500, 300, 640, 480, 0.6, "car"))))  # fmt: skip
    tasks = tasks_of(tmp_path / "ds")
    for n, task in enumerate(tasks, 1):
        task |= {"id": n, "annotations": [{"id": n, "result": task["predictions"][0]["result"]}]}
    exported = tmp_path / "export.json"
    exported.write_text(json.dumps(tasks))
    converter = Converter(config=(tmp_path / "ds" / "label_config.xml").read_text(),
                          project_dir=str(tmp_path), download_resources=False)  # fmt: skip

    converter.convert_to_coco(str(exported), str(tmp_path / "out"), is_dir=False)

    result = json.loads((tmp_path / "out" / "result.json").read_text())
    names = {c["id"]: c["name"] for c in result["categories"]}
    boxes = sorted((names[a["category_id"]], *a["bbox"]) for a in result["annotations"])
    assert boxes == [
        ("car", 500, 300, 140, 180),
        ("person", 100, pytest.approx(50), 200, pytest.approx(350)),
    ]
    assert [(i["width"], i["height"]) for i in result["images"]] == [(640, 480)]


def test_boxes_below_the_threshold_are_a_second_prediction_and_no_label(tmp_path: Path) -> None:
    written(
        tmp_path,
        frame(
            boxes=(box(8, 6, 40, 30, 0.8),),
            candidates=(box(1, 1, 9, 9, 0.2), box(50, 30, 60, 40, 0.3, "car")),
        ),
    )

    served, below = tasks_of(tmp_path)[0]["predictions"]
    assert (served["model_version"], len(served["result"])) == ("yolox_nano:1", 1)
    assert below["model_version"] == "yolox_nano:1 below threshold"
    assert [r["score"] for r in below["result"]] == [0.2, 0.3]
    assert len(coco_of(tmp_path).getAnnIds()) == 1
    assert len(next((tmp_path / "labels").rglob("*.txt")).read_text().splitlines()) == 1


# --- metadata and records ---------------------------------------------------------------------


def test_every_layout_carries_the_frames_metadata(tmp_path: Path) -> None:
    written(tmp_path, frame(camera_id="Gate 3 / north", frame_id=42, reason="drift-burst",
                            drift_event_id="ep-7"))  # fmt: skip
    expected = {"camera_id": "Gate 3 / north", "frame_id": 42,
                "capture_time": "2025-03-14T09:26:53.589000+00:00", "reason": "drift-burst",
                "strategy": "drift", "model_name": "yolox_nano", "model_version": "1",
                "drift_event_id": "ep-7"}  # fmt: skip

    (image,) = coco_of(tmp_path).dataset["images"]
    (task,) = tasks_of(tmp_path)
    (record_file,) = (tmp_path / "records").rglob("*.json")
    record = json.loads(record_file.read_text())

    assert image.items() >= expected.items()
    assert task["data"].items() >= expected.items()
    assert (tmp_path / task["data"]["record"]) == record_file
    assert record.items() >= (expected | {"capture_time": "2025-03-14T09:26:53.589000Z"}).items()
    assert image["extra"] == task["meta"]["extra"] == record["extra"] == {"band": "0.15-0.35"}


def test_adding_the_same_frame_again_changes_nothing(tmp_path: Path) -> None:
    """A redelivered message (at-least-once) lands on the same files with the same content."""
    dataset = written(tmp_path, frame())
    before = {k: v for k, v in files(tmp_path).items() if not k.startswith(("coco/", "labelst"))}

    assert dataset.add(frame()) == next(iter(k for k in before if k.startswith("images/")))
    dataset.flush()

    after = files(tmp_path)
    assert after.items() >= before.items() and len(after) == len(before) + 2
    assert len(tasks_of(tmp_path)) == 1


def test_capture_time_sets_the_day_and_flush_rebuilds_only_days_written_since(
    tmp_path: Path,
) -> None:
    dataset = written(tmp_path, frame(frame_id=1), frame(frame_id=2, when=WHEN + timedelta(days=1)))
    assert sorted(p.name for p in (tmp_path / "coco").iterdir()) == [
        "2025-03-14.json", "2025-03-15.json"]  # fmt: skip
    (tmp_path / "coco" / "2025-03-14.json").unlink()  # so a rebuild of that day would show

    dataset.add(frame(frame_id=3, when=WHEN + timedelta(days=1, hours=1)))
    dataset.flush()

    assert not (tmp_path / "coco" / "2025-03-14.json").exists()
    assert len(coco_of(tmp_path, "2025-03-15").getImgIds()) == 2
    dataset.flush()  # nothing added: nothing rewritten
    assert not (tmp_path / "coco" / "2025-03-14.json").exists()


# --- many writers -----------------------------------------------------------------------------


def test_replicas_writing_one_root_each_flush_every_replicas_frames(tmp_path: Path) -> None:
    """Two capture replicas (cameras split between them by partition) share the root: neither
    writes the other's files, and a day file written by either holds both replicas' frames."""
    a, b = Dataset(str(tmp_path), CLASSES), Dataset(str(tmp_path), CLASSES)
    a.add(frame(camera_id="cam-a", frame_id=1))
    b.add(frame(camera_id="cam-b", frame_id=1))
    a.flush()  # a has not seen b's frame but reads it from the records
    assert {t["data"]["camera_id"] for t in tasks_of(tmp_path)} == {"cam-a", "cam-b"}

    b.add(frame(camera_id="cam-b", frame_id=2))
    a.add(frame(camera_id="cam-a", frame_id=2))
    b.flush()
    a.flush()

    assert sorted(t["data"]["frame_id"] for t in tasks_of(tmp_path)) == [1, 1, 2, 2]
    assert len(coco_of(tmp_path).getImgIds()) == 4
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(".")]  # no temp file left


def test_a_writer_reads_each_record_once_so_a_flush_costs_the_new_records(tmp_path: Path) -> None:
    """Records never change once written: a writer keeps what it has read, and its next flush
    reads only records new to it (here an old record is overwritten on disk to show it)."""
    a, b = Dataset(str(tmp_path), CLASSES), Dataset(str(tmp_path), CLASSES)
    b.add(frame(camera_id="cam-b", frame_id=1))
    a.add(frame(camera_id="cam-a", frame_id=1))
    a.flush()
    next((tmp_path / "records").rglob("*-1-*.json")).write_text("{}")  # would not parse

    b.add(frame(camera_id="cam-b", frame_id=2))
    a.add(frame(camera_id="cam-a", frame_id=2))
    a.flush()

    assert len(tasks_of(tmp_path)) == 4


def test_a_record_removed_by_hand_leaves_the_day_files_at_the_next_flush(tmp_path: Path) -> None:
    dataset = written(tmp_path, frame(frame_id=1), frame(frame_id=2))
    next((tmp_path / "records").rglob("*-1-*.json")).unlink()

    dataset.add(frame(frame_id=3))
    dataset.flush()

    assert sorted(t["data"]["frame_id"] for t in tasks_of(tmp_path)) == [2, 3]


def test_a_damaged_record_is_skipped_not_fatal(tmp_path: Path) -> None:
    written(tmp_path, frame(frame_id=1))
    broken = tmp_path / "records" / DAY / "x" / "broken.json"
    broken.parent.mkdir()
    broken.write_text("{not json")
    dataset = written(tmp_path, frame(frame_id=2))

    dataset.flush()

    assert sorted(t["data"]["frame_id"] for t in tasks_of(tmp_path)) == [1, 2]


def test_any_fsspec_url_holds_the_dataset() -> None:
    url = f"memory://steadyeye-test-{uuid.uuid4().hex}"
    dataset = Dataset(url, CLASSES)
    image = dataset.add(frame())
    dataset.flush()

    fs, root = fsspec.core.url_to_fs(url)
    assert fs.cat_file(f"{root}/{image}") == frame().jpeg
    (task,) = json.loads(fs.cat_file(f"{root}/labelstudio/{DAY}.json"))
    assert task["data"]["image"].startswith("memory://")
    assert task["data"]["image"].endswith(f"{root}/{image}")
    assert "path" not in yaml.safe_load(fs.cat_file(f"{root}/data.yaml"))
    fs.rm(root, recursive=True)


# --- refusals ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "captured",
    [
        pytest.param(frame(boxes=(box(1, 1, 5, 5, cls="zebra"),)), id="served-class-unknown"),
        pytest.param(frame(candidates=(box(1, 1, 5, 5, cls="zebra"),)), id="candidate-unknown"),
    ],
)
def test_a_frame_with_a_class_outside_the_dataset_is_refused_whole(
    tmp_path: Path, captured
) -> None:
    dataset = Dataset(str(tmp_path), CLASSES)
    before = files(tmp_path)

    with pytest.raises(UnknownClass, match="zebra"):
        dataset.add(captured)
    dataset.flush()

    assert files(tmp_path) == before


@pytest.mark.parametrize(
    ("captured", "message"),
    [
        pytest.param(frame(image=b""), "no image", id="no-jpeg"),
        pytest.param(frame(width=0, image=b"\xff\xd8"), "width", id="no-width"),
        pytest.param(frame(boxes=(box(float("nan"), 1, 5, 5),)), "finite", id="nan-box"),
    ],
)
def test_a_frame_that_is_no_image_is_refused(tmp_path: Path, captured, message: str) -> None:
    with pytest.raises(DatasetError, match=message):
        Dataset(str(tmp_path), CLASSES).add(captured)


def test_a_root_holding_other_classes_is_refused(tmp_path: Path) -> None:
    written(tmp_path, frame())

    with pytest.raises(DatasetError, match="other classes"):
        Dataset(str(tmp_path), ("person", "car"))
    Dataset(str(tmp_path), CLASSES)  # the same classes: another replica, or a restart
