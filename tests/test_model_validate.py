"""`steadyeye model validate`: real candidates built from the shared YOLOX-nano, served by a real
Triton next to the model they would replace.

- an int8 static-quantised export passes (through a configured Triton, as in production);
- an export that divides its input by 255 fails (the embedded Triton, --against FILE.onnx);
- an export with two class channels swapped fails on class agreement, boxes still agree, and
  its mAP on labelled frames drops;
- the same model imported with other class names fails the contract, and only the contract;
- a misspelled policy key is a usage error naming the valid keys.

Each candidate is validated once per module; the tests read that one result.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from services.rollout.agreement import FrameDetections, compare
from steadyeye.cli import main
from steadyeye.local_model import LocalModel
from steadyeye.modelimport import COCO80, import_model
from steadyeye.validate import Policy, PolicyError, parse_policy
from steadyeye.validate.server import EmbeddedTriton
from tests.conftest import shared_file

EXAMPLE_POLICY = Path(__file__).resolve().parents[1] / "examples" / "validate-policy.yaml"
FRAMES = "80"  # per run: enough evidence (~700 sure boxes), a few seconds per model
URL_ENV = "STEADYEYE_INFERENCE_TRITON_URL"


def validate(*args: str, url: str | None = None) -> tuple[int, dict | None, str]:
    """Run the command in-process: exit code, the --json result, stderr."""
    result = CliRunner().invoke(
        main, ["model", "validate", *args, "--json"], env={URL_ENV: url}, catch_exceptions=False
    )
    document = json.loads(result.stdout) if result.stdout.strip() else None
    return result.exit_code, document, result.stderr


# -- fixtures: candidates, a Triton serving the current model, one run per candidate ----------


@pytest.fixture(scope="module")
def source() -> Path:
    return shared_file("models", "yolox_nano.onnx")


@pytest.fixture(scope="module")
def candidates(model_candidates: dict[str, Path]) -> dict[str, Path]:
    return model_candidates  # int8 calibrated on frames 300-610: disjoint from 0-79


@pytest.fixture(scope="module")
def triton(tmp_path_factory: pytest.TempPathFactory, source: Path):
    """The 'configured' Triton: explicit model control, serving yolox_nano version 1."""
    workdir = tmp_path_factory.mktemp("triton")
    import_model(source, "yolox", workdir / "repository", "yolox_nano", instances=1)
    embedded = EmbeddedTriton(workdir, workdir / "repository")
    server = embedded.start()
    server.load("yolox_nano")
    yield server
    embedded.stop()


@pytest.fixture(scope="module")
def int8(candidates: dict[str, Path], triton, tmp_path_factory: pytest.TempPathFactory):
    report = tmp_path_factory.mktemp("report") / "int8.html"
    code, result, stderr = validate(
        str(candidates["int8"]), "--family", "yolox", "--against", "yolox_nano:1",
        "--max-frames", FRAMES, "--report", str(report), url=triton.url,
    )  # fmt: skip
    return code, result, stderr, report


@pytest.fixture(scope="module")
def div255(candidates: dict[str, Path], source: Path, tmp_path_factory: pytest.TempPathFactory):
    # A latency limit no model meets, to see a policy's threshold used and a failure confirmed.
    policy = tmp_path_factory.mktemp("policy") / "policy.yaml"
    policy.write_text("latency:\n  max_p95_ms: 0.5\n")
    return validate(
        str(candidates["div255"]), "--family", "yolox", "--against", str(source),
        "--max-frames", FRAMES, "--policy", str(policy),
    )  # fmt: skip


@pytest.fixture(scope="module")
def labelled(tmp_path_factory: pytest.TempPathFactory, source: Path) -> Path:
    """60 frames as JPEGs with COCO labels: the current model's sure boxes (>= 0.4) as pseudo
    ground truth (the clip has no human labels); run in-process, not through Triton."""
    root = tmp_path_factory.mktemp("labelled")
    (root / "images").mkdir()
    model = LocalModel(source, "yolox", root / "model")
    capture = cv2.VideoCapture(str(shared_file("media", "vtest.avi")))
    images, annotations = [], []
    for index in range(60):
        ok, image = capture.read()
        assert ok
        name = f"images/{index:06d}.jpg"
        cv2.imwrite(str(root / name), image, [cv2.IMWRITE_JPEG_QUALITY, 95])
        height, width = image.shape[:2]
        images.append({"id": index + 1, "file_name": name, "width": width, "height": height})
        for det in model.detect(image, min_score=0.4):
            box = det.box
            annotations.append({"id": len(annotations) + 1, "image_id": index + 1,
                                "category_id": det.class_id + 1, "iscrowd": 0,
                                "bbox": [box.x1, box.y1, box.x2 - box.x1, box.y2 - box.y1],
                                "area": (box.x2 - box.x1) * (box.y2 - box.y1)})  # fmt: skip
    capture.release()
    categories = [{"id": k + 1, "name": name} for k, name in enumerate(COCO80)]
    labels = root / "labels.json"
    labels.write_text(json.dumps({"images": images, "annotations": annotations,
                                  "categories": categories}))  # fmt: skip
    return labels


@pytest.fixture(scope="module")
def permuted(candidates: dict[str, Path], triton, labelled: Path):
    return validate(
        str(candidates["permuted"]), "--family", "yolox", "--against", "yolox_nano",
        "--labels", str(labelled), url=triton.url,
    )  # fmt: skip


@pytest.fixture(scope="module")
def renamed(source: Path, triton, tmp_path_factory: pytest.TempPathFactory):
    names = tmp_path_factory.mktemp("names") / "names.txt"
    names.write_text("\n".join(["pedestrian", *COCO80[1:]]))
    return validate(
        str(source), "--family", "yolox", "--against", "yolox_nano", "--class-names",
        str(names), "--max-frames", FRAMES, url=triton.url,
    )  # fmt: skip


def statuses(result: dict) -> dict[str, str]:
    return {name: check["status"] for name, check in result["checks"].items()}


def by_class(result: dict) -> dict[str, dict]:
    return {row["class"]: row for row in result["per_class"]}


# -- the int8 candidate passes ------------------------------------------------------------------


def test_int8_export_passes_every_check(int8, triton) -> None:
    code, result, stderr, _ = int8
    assert code == 0, stderr
    assert result["passed"] and result["failed"] == []
    assert statuses(result) == dict.fromkeys(
        ["import", "contract", "latency", "memory", "detections_per_frame", "boxes", "classes"],
        "pass",
    )
    assert result["triton"] == {"kind": "configured", "url": triton.url}
    assert result["reference"]["version"] == "1"
    assert result["frames"]["count"] == int(FRAMES)
    checks = result["checks"]
    assert 0.7 <= checks["detections_per_frame"]["figures"]["ratio"] < 1.0  # int8 finds fewer
    assert checks["classes"]["figures"]["f1"] >= 0.85
    assert checks["classes"]["figures"]["reference_boxes"] >= 500
    assert checks["boxes"]["figures"]["precision"] > 0.95  # what int8 finds, fp32 finds too


def test_int8_figures_say_what_was_measured(int8) -> None:
    _, result, _, _ = int8
    latency = result["checks"]["latency"]["figures"]
    for side in ("reference", "candidate"):
        assert 0 < latency[side]["p50_ms"] <= latency[side]["p95_ms"]
        assert latency[side]["requests"] == int(FRAMES)
        assert latency[side]["server_compute_ms"] > 0
    memory = result["checks"]["memory"]["figures"]
    assert "USS" in memory["measured"]
    # The served model has two Python-backend stubs, the candidate one: per instance, both
    # are tens of MB, and the int8 weights (1.2 MB vs 3.7 MB) make no real difference.
    assert memory["per_model"]["reference"]["processes"] == 1
    assert memory["per_model"]["candidate"]["processes"] == 1
    assert 10 < memory["candidate_mb"] < 500 and 0.5 < memory["ratio"] < 1.5
    # The constant low-score "sports ball" of the fp32 model is never sure: not gated.
    ball = by_class(result).get("sports ball")
    assert ball is None or (ball["support"] == 0 and ball["status"] == "skipped")
    assert by_class(result)["person"]["status"] == "pass"


def test_candidate_is_unloaded_from_the_configured_triton(int8, triton) -> None:
    index = triton.client.get_model_repository_index(as_json=True).get("models", [])
    ready = {m["name"] for m in index if m.get("state") == "READY"}
    assert ready == {"yolox_nano"}


def test_html_report_is_self_contained(int8) -> None:
    _, result, _, report = int8
    page = report.read_text()
    assert page.count("data:image/jpeg;base64,") == len(result["worst_frames"]) >= 1
    assert "<h2>Per class</h2>" in page and ">person<" in page
    for external in ("src='http", 'src="http', "<script", "<link"):
        assert external not in page
    worst = result["worst_frames"]
    assert worst == sorted(worst, key=lambda w: -w["disagreements"])


# -- the three failures -------------------------------------------------------------------------


def test_div255_export_fails_on_detections(div255) -> None:
    code, result, stderr = div255
    assert code == 1, stderr
    assert result["triton"]["kind"] == "embedded"
    checks = statuses(result)
    assert checks["contract"] == "pass"  # shapes and batching are fine: only detections tell
    assert checks["detections_per_frame"] == "fail" and checks["boxes"] == "fail"
    assert result["checks"]["detections_per_frame"]["figures"]["ratio"] < 0.05
    assert result["checks"]["boxes"]["figures"]["f1"] < 0.05


def test_a_latency_failure_is_measured_twice(div255) -> None:
    _, result, _ = div255
    latency = result["checks"]["latency"]
    assert latency["status"] == "fail" and "(max 0.5 ms)" in latency["reason"]
    assert "measured twice" in latency["reason"]
    assert latency["figures"]["first_round"]["candidate"]["requests"] == int(FRAMES)
    assert result["policy"]["latency"]["max_p95_ms"] == 0.5


def test_permuted_classes_fail_on_class_agreement_while_boxes_agree(permuted) -> None:
    code, result, stderr = permuted
    assert code == 1, stderr
    checks = statuses(result)
    assert checks["boxes"] == "pass" and checks["detections_per_frame"] == "pass"
    assert checks["classes"] == "fail"
    assert result["checks"]["boxes"]["figures"]["f1"] > 0.95
    assert result["checks"]["classes"]["figures"]["f1"] < 0.3
    rows = by_class(result)
    assert rows["person"]["status"] == rows["car"]["status"] == "fail"
    assert rows["truck"]["status"] == "pass"  # class 7 kept its channel


def test_permuted_classes_lose_map_on_labelled_frames(permuted) -> None:
    _, result, _ = permuted
    assert result["frames"]["count"] == 60
    mean_ap = result["checks"]["map"]
    assert mean_ap["status"] == "fail"
    figures = mean_ap["figures"]
    assert figures["evaluator"] in ("faster_coco_eval", "pycocotools")
    # The labels are the current model's own sure boxes: it scores near 1.
    assert figures["reference"]["map"] > 0.8
    assert figures["drop"] > 0.2


def test_other_class_names_fail_the_contract_only(renamed) -> None:
    code, result, stderr = renamed
    assert code == 1, stderr
    assert result["failed"] == ["contract"]
    reason = result["checks"]["contract"]["reason"]
    assert "'pedestrian'" in reason and "'person'" in reason


def test_a_candidate_the_importer_refuses_fails_the_import_check(source: Path, triton) -> None:
    # The YOLOX export read as YOLOv8's layout: `model import` refuses it, with the reason.
    code, result, stderr = validate(str(source), "--family", "yolov8", "--against", "yolox_nano",
                                    url=triton.url)  # fmt: skip
    assert code == 1, stderr
    assert result["failed"] == ["import"] and list(result["checks"]) == ["import"]
    assert "`model import` refuses it" in result["checks"]["import"]["reason"]


# -- usage errors -------------------------------------------------------------------------------


def test_misspelled_policy_key_is_a_usage_error(tmp_path: Path, source: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("agreement:\n  min_clas_f1: 0.9\n")
    code, result, stderr = validate(str(source), "--family", "yolox", "--against", str(source),
                                    "--policy", str(policy))  # fmt: skip
    assert code == 2 and result is None
    assert "agreement.min_clas_f1: unknown key (did you mean 'min_class_f1'?)" in stderr
    assert "valid keys: iou, serve_score, margin" in stderr


def test_policy_errors_name_the_valid_keys_and_bad_values() -> None:
    with pytest.raises(PolicyError, match=r"agrement: unknown key \(did you mean 'agreement'"):
        parse_policy({"agrement": {}})
    with pytest.raises(PolicyError, match="valid keys: agreement, latency, memory, map, contract"):
        parse_policy({"thresholds": {}})
    with pytest.raises(PolicyError, match=r"latency.max_p95_ratio: Input should be greater"):
        parse_policy({"latency": {"max_p95_ratio": 0}})
    with pytest.raises(PolicyError, match="detections_ratio"):
        parse_policy({"agreement": {"detections_ratio": [1.3, 0.7]}})


def test_example_policy_documents_the_defaults() -> None:
    assert parse_policy(yaml.safe_load(EXAMPLE_POLICY.read_text())) == Policy()


def test_unknown_reference_without_triton_is_a_usage_error(tmp_path: Path, source: Path) -> None:
    code, _, stderr = validate(str(source), "--family", "yolox", "--against", "no_such_model",
                               "--repository", str(tmp_path))  # fmt: skip
    assert code == 2
    assert "no_such_model" in stderr and "ONNX file" in stderr


# -- agreement, on boxes made up here -----------------------------------------------------------


def frame(*boxes: tuple[float, float, float, float, float, int]) -> FrameDetections:
    array = np.array(boxes, np.float32).reshape(-1, 6)
    return FrameDetections(array[:, :4], array[:, 4], array[:, 5].astype(np.int64))


def test_agreement_counts_only_sure_boxes_missing_on_the_other_side() -> None:
    ref = frame(
        (0, 0, 10, 10, 0.9, 0),  # matched by the candidate's 0.3: near the threshold, fine
        (20, 20, 30, 30, 0.9, 0),  # missed: nothing there even at 0.1
        (40, 40, 50, 50, 0.3, 1),  # unsure on both sides: no evidence either way
    )
    cand = frame((0, 0, 10, 11, 0.3, 0), (60, 60, 70, 70, 0.8, 2), (40, 40, 50, 50, 0.2, 1))
    result = compare([(ref, cand)], iou=0.5, serve=0.25, margin=0.15)
    # recall: 1 of 2 sure reference boxes; precision: 0 of 1 sure candidate box.
    assert (result.classes.ref_sure, result.classes.ref_sure_matched) == (2, 1)
    assert (result.classes.cand_sure, result.classes.cand_sure_matched) == (1, 0)
    assert result.frame_disagreement == [2]
    assert result.served_per_frame == (3.0, 2.0)  # at serve_score 0.25


def test_class_aware_and_class_agnostic_agreement_differ_on_swapped_names() -> None:
    ref = frame((0, 0, 10, 10, 0.9, 0), (20, 20, 30, 30, 0.9, 2))
    cand = frame((0, 0, 10, 10, 0.9, 2), (20, 20, 30, 30, 0.9, 0))
    result = compare([(ref, cand)], iou=0.5, serve=0.25, margin=0.0)
    assert result.boxes.f1 == 1.0 and result.classes.f1 == 0.0
    assert result.per_class[0].f1 == result.per_class[2].f1 == 0.0


def test_matching_is_greedy_by_candidate_score() -> None:
    ref = frame((0, 0, 10, 10, 0.9, 0))
    # Both overlap the reference box; the higher-scored one takes it, the other is unmatched.
    cand = frame((0, 0, 10, 9, 0.5, 0), (0, 0, 10, 10, 0.95, 0))
    result = compare([(ref, cand)], iou=0.5, serve=0.25, margin=0.0)
    assert result.classes.cand_sure_matched == 1 and result.classes.cand_sure == 2
    assert result.classes.recall == 1.0 and result.classes.precision == 0.5
