"""Which tracks of a Tracks message were seen in its frame."""

from __future__ import annotations

from steadyeye.v1.tracks_pb2 import Track, Tracks, TrackState

# Matched to a detection in this frame. ENDED tracks have left; COASTED ones were not seen
# (occluded or missed): their box is the tracker's prediction and they carry no detection.
DETECTED = frozenset({TrackState.TRACK_STATE_STARTED, TrackState.TRACK_STATE_UPDATED})


def detected(message: Tracks) -> list[Track]:
    """The tracks a detection matched in this frame, in message order."""
    return [t for t in message.tracks if t.state in DETECTED]
