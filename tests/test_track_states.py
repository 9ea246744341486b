"""Track states on steadyeye.tracks.v1: the tracking service publishes a missed track as COASTED
(its predicted box, no detection), and each consumer sees only the tracks a detection matched in
the frame (a COASTED one was not seen, an ENDED one has left)."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from services.alert.handler import to_observation
from services.core.tracks import detected
from services.tracking.handler import TrackingHandler
from services.tracking.tracker import TrackerConfig
from steadyeye.annotate import boxes_of
from steadyeye.v1.common_pb2 import BoundingBox, FrameRef
from steadyeye.v1.detections_pb2 import Detection, Detections
from steadyeye.v1.tracks_pb2 import Track, Tracks, TrackState
from tests.scenes import NoState


def frame() -> Tracks:
    seen = Detection(class_name="person", score=0.9, box=BoundingBox(x1=1, y1=2, x2=30, y2=90))
    predicted = BoundingBox(x1=40, y1=2, x2=70, y2=90)
    return Tracks(
        ref=FrameRef(camera_id="cam-1", frame_id=7),
        tracks=[
            Track(track_id=1, state=TrackState.TRACK_STATE_STARTED, detection=seen, box=seen.box),
            Track(track_id=2, state=TrackState.TRACK_STATE_COASTED, box=predicted),
            Track(track_id=3, state=TrackState.TRACK_STATE_UPDATED, detection=seen, box=seen.box),
            Track(track_id=4, state=TrackState.TRACK_STATE_ENDED),
        ],
    )


@pytest.mark.parametrize(
    ("consumer", "ids_seen"),
    [
        (lambda m: [t.track_id for t in detected(m)], [1, 3]),
        (lambda m: [t.track_id for t in to_observation(m).tracks], [1, 3]),
        (lambda m: [b.track_id for b in boxes_of(m)], [1, 3]),
    ],
    ids=["detected", "alert-observation", "drawn-boxes"],
)
def test_only_tracks_detected_in_the_frame_are_seen_in_it(consumer, ids_seen) -> None:
    assert consumer(frame()) == ids_seen


def coasted_count(camera_id: str) -> float:
    sample = REGISTRY.get_sample_value(
        "steadyeye_tracks_total", {"camera": camera_id, "event": "coasted"}
    )
    return sample or 0.0


def test_the_tracking_service_publishes_a_missed_track_as_coasted() -> None:
    config = TrackerConfig(coast_frames=2)
    handler = TrackingHandler(NoState(), "tracks", config)  # type: ignore[arg-type]
    before = coasted_count("cam-coast")
    published, coasted_x1 = [], []
    for frame_id in range(8):  # walking right, seen in frames 0-3, then missed
        message = Detections(ref=FrameRef(camera_id="cam-coast", frame_id=frame_id))
        if frame_id < 4:
            box = BoundingBox(x1=100 + 5 * frame_id, y1=50, x2=140 + 5 * frame_id, y2=150)
            message.detections.add(box=box, score=0.9, class_id=0, class_name="person")
        [out] = handler.handle(message)
        tracks = out.message.tracks
        published.append([(t.track_id, t.state, t.HasField("detection")) for t in tracks])
        coasted_x1 += [t.box.x1 for t in tracks if t.state == TrackState.TRACK_STATE_COASTED]
    started, updated, coasted = (
        TrackState.TRACK_STATE_STARTED,
        TrackState.TRACK_STATE_UPDATED,
        TrackState.TRACK_STATE_COASTED,
    )
    assert published == [
        [],  # tentative
        [(1, started, True)],
        [(1, updated, True)],
        [(1, updated, True)],
        [(1, coasted, False)],
        [(1, coasted, False)],
        [],  # lost and no longer reported, not yet ended
        [],
    ]
    assert 115 < coasted_x1[0] < coasted_x1[1]  # the prediction walks on
    assert coasted_count("cam-coast") - before == 2
