"""`steadyeye demo --report DIR`: the annotated video, the plots and the page; first its parts
without a stack (frame order, banners, the writer fed out of order), then the real run."""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("imageio_ffmpeg", reason="the report needs the view extra")

from steadyeye.report import ReportError, check_directory
from steadyeye.report import writer as report_writer
from steadyeye.report.frames import Banners, FrameOrder
from steadyeye.tally import Tally
from steadyeye.v1.alerts_pb2 import Alert, Severity
from steadyeye.v1.common_pb2 import BoundingBox, FrameRef, Payload
from steadyeye.v1.detections_pb2 import Detection
from steadyeye.v1.frames_pb2 import Frame
from steadyeye.v1.tracks_pb2 import Track, Tracks, TrackState
from tests.conftest import shared_file

FRAMES = 200


def test_frames_come_out_in_id_order_each_once():
    order: FrameOrder[str] = FrameOrder(capacity=2)
    out: list[tuple[int, str]] = []
    for frame_id in (1, 0, 3, 1, 2, 5, 4):  # out of order, and 1 redelivered
        if order.wants(frame_id):
            out += order.add(frame_id, f"f{frame_id}")
    assert [i for i, _ in out] == [0, 1, 2, 3]  # only what the buffer cannot hold yet
    out += order.flush()
    assert [i for i, _ in out] == [0, 1, 2, 3, 4, 5] and out[5] == (5, "f5")
    assert order.duplicates == 1 and order.late == 0
    assert not order.wants(4)  # a redelivery after it was written
    assert order.duplicates == 2


def test_a_frame_later_than_the_buffer_is_left_out_and_counted():
    order: FrameOrder[int] = FrameOrder(capacity=1)
    written = [i for f in (0, 2, 3) if order.wants(f) for i, _ in order.add(f, f)]
    assert written == [0, 2]
    assert not order.wants(1)  # 2 is already in the video
    assert order.late == 1 and [i for i, _ in order.flush()] == [3]


def test_a_banner_shows_from_its_frame_for_span_frames_written():
    banners = Banners(span=3)
    banners.add(5, "lawn")
    shown = {frame_id: banners.for_frame(frame_id) for frame_id in range(3, 6)}
    assert shown == {3: [], 4: [], 5: ["lawn"]}
    banners.add(6, "crowd")
    banners.add(2, "late")  # read after its frame was written: starts on the next one
    assert banners.for_frame(8) == ["late", "lawn", "crowd"]  # id 7 was shed: spans count frames
    assert banners.for_frame(9) == ["late", "lawn", "crowd"]
    assert banners.for_frame(10) == ["late", "crowd"]
    assert banners.for_frame(11) == []


def test_a_directory_that_takes_no_files_is_refused(tmp_path):
    check_directory(tmp_path / "new" / "report")  # created
    assert (tmp_path / "new" / "report").is_dir()
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ReportError, match="cannot write in"):
        check_directory(blocker / "report")


def test_demo_refuses_an_unwritable_report_directory_before_starting(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    done = subprocess.run(
        [sys.executable, "-m", "steadyeye.cli", "demo", "--report", str(blocker / "report")],
        env={**os.environ, "STEADYEYE_STACK_WORKDIR": str(tmp_path / "stack")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "--report" in done.stderr and "cannot write in" in done.stderr
    assert not (tmp_path / "stack").exists()  # no stack was started


def _read(path: Path) -> Iterator[np.ndarray]:
    """Every frame OpenCV decodes (counted by reading: the container's count may be off)."""
    capture = cv2.VideoCapture(str(path))
    assert capture.isOpened(), path
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        yield frame
    capture.release()


def _tracks(frame_id: int, width: int, height: int) -> Tracks:
    box = BoundingBox(x1=10, y1=height - 60, x2=60, y2=height - 10)
    detection = Detection(box=box, score=0.9, class_name="person")
    track = Track(track_id=1, state=TrackState.TRACK_STATE_UPDATED, detection=detection)
    return Tracks(
        ref=FrameRef(camera_id="cam", frame_id=frame_id, width=width, height=height),
        tracks=[track],
    )


def test_the_writer_draws_frames_in_order_once_with_banners(tmp_path, monkeypatch):
    """Frames out of order, redelivered, inline, JPEG and missing: one video frame each, in
    id order (each frame's grey level is its id), the alert's banner from its frame on."""
    monkeypatch.setattr(report_writer, "HOLD_FRAMES", 4)
    width, height, count = 320, 240, 20
    images = {i: np.full((height, width, 3), 10 * i + 20, np.uint8) for i in range(count)}
    stored = {f"steadyeye:frame:cam:{i}": images[i].tobytes() for i in range(count)}
    stored["steadyeye:frame:cam:7"] = cv2.imencode(".jpg", images[7])[1].tobytes()
    del stored["steadyeye:frame:cam:9"]  # expired: drawn on grey
    del stored["steadyeye:frame:cam:11"]  # small enough to travel inside its frame record
    report = report_writer.Report(tmp_path, "cam", None, 10.0, stored.get)
    report.on_message(
        Frame(
            ref=FrameRef(camera_id="cam", frame_id=11, width=width, height=height),
            image=Payload(inline=images[11].tobytes()),
        )
    )
    report.on_alert(
        Alert(
            rule_id="lawn",
            severity=Severity.SEVERITY_WARNING,
            message="in the zone",
            ref=FrameRef(camera_id="cam", frame_id=5),
        )
    )
    arrival = [1, 0, 2, 4, 3, 3, 5, 7, 6, 8, 10, 9, 11, 12, 14, 13, 15, 2, 16, 17, 19, 18]
    for frame_id in arrival:
        report.on_message(_tracks(frame_id, width, height))
    tally = Tally("cam", latencies_ms=[100.0, 150.0], captured_at=[1.0, 1.1])
    index = report.finish(tally, {**tally.summary(), "source": "test"})
    assert index == tmp_path / "index.html" and report.missing == 1

    frames = list(_read(tmp_path / "demo.mp4"))
    assert len(frames) == count
    greys = [float(np.median(frame[height // 2 :, width // 2 :])) for frame in frames]
    expected = [64 if i == 9 else 10 * i + 20 for i in range(count)]
    assert np.allclose(greys, expected, atol=4), greys
    red = [int(((f[:40, :, 2] > 150) & (f[:40, :, 1] < 80)).sum()) for f in frames]
    assert red[4] == 0 and all(red[i] > 100 for i in range(5, count)), red  # span: 20 frames
    assert all(
        (np.abs(f.astype(int) - e).max(axis=2) > 60).sum() > 100
        for f, e in zip(frames, [images[i] for i in range(count)], strict=True)
    )  # the box


@pytest.mark.stack
def test_demo_report_has_the_annotated_video_plots_and_page(tmp_path):
    clip = shared_file("media", "vtest.avi")
    out = tmp_path / "report"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "steadyeye.cli",
            "demo",
            "--frames",
            str(FRAMES),
            "--pace",
            "fast",
            "--json",
            "--report",
            str(out),
        ],
        env={**os.environ, "STEADYEYE_STACK_WORKDIR": str(tmp_path / "stack")},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)
    assert summary["report"] == str(out / "index.html")
    assert "report: video" in done.stderr and str(out / "index.html") in done.stderr

    frames, annotated = 0, 0
    for frame, source in zip(_read(out / "demo.mp4"), _read(clip), strict=False):
        assert frame.shape == source.shape == (576, 768, 3)
        # Boxes, zones and labels: strong changes the encoder alone does not make (it leaves
        # no pixel of this clip off by more than 100).
        changed = (np.abs(frame.astype(int) - source.astype(int)).max(axis=2) > 100).mean()
        annotated += changed > 0.005
        frames += 1
    assert frames == summary["frames_detected"] == FRAMES  # one video frame per frame, read
    assert annotated > FRAMES * 0.9

    for name in ("latency.png", "classes.png"):
        image = cv2.imread(str(out / name))
        assert image is not None and image.shape[1] >= 600 and image.shape[0] >= 250

    page = (out / "index.html").read_text()
    links = set(re.findall(r'src="([^"]+)"', page))
    assert links == {"demo.mp4", "latency.png", "classes.png"}  # relative: DIR can move
    assert all((out / link).is_file() for link in links)
    assert "<video controls" in page
    shown = re.search(r'<pre id="summary">(.*?)</pre>', page, re.S)
    assert shown and json.loads(html.unescape(shown.group(1))) == summary
    for rule in summary["alerts_by_rule"]:
        assert f"<td>{rule}</td>" in page
