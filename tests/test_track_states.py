"""What each consumer of steadyeye.tracks.v1 makes of a track's state: only tracks a detection
matched in the frame are seen there. A COASTED track (missed, reported at its prediction) has
no detection, and an ENDED one has left."""

from __future__ import annotations

import pytest

from services.alert.handler import to_observation
from services.core.tracks import detected
from steadyeye.annotate import boxes_of
from steadyeye.v1.common_pb2 import BoundingBox, FrameRef
from steadyeye.v1.detections_pb2 import Detection
from steadyeye.v1.tracks_pb2 import Track, Tracks, TrackState


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
