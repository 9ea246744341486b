"""The tracking benchmark: MOT layout in, our tracker and supervision's ByteTrack scored with
TrackEval (HOTA) and motmetrics (MOTA, IDF1, ID switches)."""

from __future__ import annotations

import importlib.resources
from pathlib import Path

import motmetrics as mm
import numpy as np
import pytest

from steadyeye.bench.synthetic import mot_from_ground_truth, synthesize_mot
from steadyeye.bench.tracking import bench_tracking

# Our tracker may trail the baseline by this much (it confirms no track on the first frame,
# where supervision's confirms every detection).
TOLERANCE = 0.02


def check_shape(result: dict, sequence: str) -> None:
    assert set(result) == {"sequence", "ours", "baseline"}
    assert result["sequence"] == sequence
    assert set(result["ours"]) == {"hota", "mota", "idf1", "id_switches", "fps"}
    assert set(result["baseline"]) == {"name", "hota", "mota", "idf1", "id_switches", "fps"}
    assert result["baseline"]["name"].startswith("supervision.ByteTrack ")
    for side in ("ours", "baseline"):
        r = result[side]
        assert 0.0 <= r["hota"] <= 1.0 and 0.0 <= r["idf1"] <= 1.0 and r["mota"] <= 1.0
        assert isinstance(r["id_switches"], int) and r["id_switches"] >= 0
        assert r["fps"] > 0


@pytest.mark.parametrize("seed", [0, 1])
def test_bench_on_synthetic_sequence(tmp_path: Path, seed: int) -> None:
    seq = synthesize_mot(tmp_path / f"SYN-{seed}", frames=300, objects=12, seed=seed)
    result = bench_tracking(seq)
    print(result)  # the figures, with -s
    check_shape(result, f"SYN-{seed}")
    ours, base = result["ours"], result["baseline"]
    assert ours["mota"] > 0.5  # a working tracker, not just one no worse than the baseline
    assert ours["idf1"] >= base["idf1"] - TOLERANCE
    assert ours["hota"] >= base["hota"] - TOLERANCE


def test_out_file_is_mot_results_format(tmp_path: Path) -> None:
    seq = synthesize_mot(tmp_path / "SYN", frames=120, objects=6, seed=4)
    out = tmp_path / "results" / "SYN.txt"
    bench_tracking(seq, out=out)
    rows = [line.split(",") for line in out.read_text().splitlines()]
    assert rows
    keys = []
    for r in rows:
        assert len(r) == 10 and r[7:] == ["-1", "-1", "-1"]
        frame, track, (x, y, w, h, conf) = int(r[0]), int(r[1]), map(float, r[2:7])
        assert 1 <= frame <= 120 and track >= 1
        assert w > 0 and h > 0 and 0.0 <= conf <= 1.0 and np.isfinite([x, y]).all()
        keys.append((frame, track))
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    # A real MOT reader takes it too.
    assert len(mm.io.loadtxt(str(out), fmt="mot15-2D")) == len(rows)


def test_synthesis_is_deterministic_and_hard_enough(tmp_path: Path) -> None:
    a = synthesize_mot(tmp_path / "a", frames=200, objects=8, seed=7)
    b = synthesize_mot(tmp_path / "b", frames=200, objects=8, seed=7)
    c = synthesize_mot(tmp_path / "c", frames=200, objects=8, seed=8)
    for part in ("gt/gt.txt", "det/det.txt"):
        assert (a / part).read_text() == (b / part).read_text()
        assert (a / part).read_text() != (c / part).read_text()
    gt = np.loadtxt(a / "gt" / "gt.txt", delimiter=",")
    det = np.loadtxt(a / "det" / "det.txt", delimiter=",")
    assert len(np.unique(gt[:, 1])) == 8
    assert (gt[:, 8] < 0.25).any()  # occlusions
    assert (det[:, 6] < 0.5).any() and (det[:, 6] >= 0.5).any()  # both association stages
    assert "seqLength=200" in (a / "seqinfo.ini").read_text()


def write_pair(directory: Path, second: str, frames: int = 20) -> Path:
    """One pedestrian and a second object whose gt row tail is `second`, both detected
    perfectly on every frame."""
    (directory / "det").mkdir(parents=True)
    (directory / "gt").mkdir()
    gt, det = [], []
    for f in range(1, frames + 1):
        gt.append(f"{f},1,100,100,40,100,1,1,1")
        gt.append(f"{f},2,300,100,40,100{second}")
        det.append(f"{f},-1,100,100,40,100,0.9,-1,-1,-1")
        det.append(f"{f},-1,300,100,40,100,0.9,-1,-1,-1")
    (directory / "gt" / "gt.txt").write_text("\n".join(gt) + "\n")
    (directory / "det" / "det.txt").write_text("\n".join(det) + "\n")
    return directory


@pytest.mark.parametrize(
    ("second", "mota"),
    [
        # 20 frames per object; ours shows each from frame 2 (min_hits = 2).
        pytest.param(",1,1,1", 1 - 2 / 40, id="pedestrian"),
        pytest.param(",1,7,1", 1 - 1 / 20, id="static-person-is-a-distractor"),
        pytest.param(",1,3,1", 1 - (1 + 19) / 20, id="car-track-is-a-false-positive"),
        pytest.param(",0,1,1", 1 - (1 + 19) / 20, id="not-considered"),
        pytest.param("", 1 - 2 / 40, id="six-columns"),
    ],
)
def test_ground_truth_is_filtered_as_mot17(tmp_path: Path, second: str, mota: float) -> None:
    # No seqinfo.ini either: the name and length come from the folder and the files.
    seq = write_pair(tmp_path / "PAIR", second)
    result = bench_tracking(seq)
    assert result["sequence"] == "PAIR"
    assert result["ours"]["mota"] == pytest.approx(mota, abs=1e-4)
    assert result["ours"]["id_switches"] == 0


def tud_ground_truth(name: str) -> Path:
    path = Path(str(importlib.resources.files("motmetrics"))) / "data" / name / "gt.txt"
    if not path.is_file():
        pytest.skip(f"motmetrics does not ship {name}")
    return path


@pytest.mark.parametrize("name", ["TUD-Campus", "TUD-Stadtmitte"])
def test_bench_on_tud_with_simulated_detections(tmp_path: Path, name: str) -> None:
    seq = mot_from_ground_truth(tud_ground_truth(name), tmp_path / name, seed=0)
    result = bench_tracking(seq)
    print(result)
    check_shape(result, name)
    ours, base = result["ours"], result["baseline"]
    assert ours["idf1"] >= base["idf1"] - TOLERANCE
    assert ours["hota"] >= base["hota"] - TOLERANCE
