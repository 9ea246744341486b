"""Our ByteTrack-class multi-object tracker: per-camera, snapshot-able, frame-gap aware."""

from services.tracking.tracker.bytetrack import ByteTracker, TrackUpdate
from services.tracking.tracker.config import TrackerConfig
from services.tracking.tracker.state import STATE_VERSION

__all__ = ["STATE_VERSION", "ByteTracker", "TrackUpdate", "TrackerConfig"]
