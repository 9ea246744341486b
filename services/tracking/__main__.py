from services.core.runtime import Runtime, run_consumer
from services.core.statestore import StateStore
from services.tracking.handler import TrackingHandler
from services.tracking.settings import TrackingSettings
from services.tracking.tracker import TrackerConfig


def build(runtime: Runtime[TrackingSettings]) -> TrackingHandler:
    s = runtime.settings
    config = TrackerConfig(
        high_thresh=s.high_thresh,
        low_thresh=s.low_thresh,
        new_track_thresh=s.new_track_thresh,
        min_hits=s.min_hits,
        track_buffer=s.track_buffer,
        class_aware=s.class_aware,
        low_for_lost=s.low_for_lost,
        low_for_tentative=s.low_for_tentative,
        recovery_thresh=s.recovery_thresh,
        direction_weight=s.direction_weight,
        scene_motion_ref=s.scene_motion_ref,
    )
    return TrackingHandler(StateStore(runtime.redis(), "tracker"), runtime.topics.tracks, config)


if __name__ == "__main__":
    run_consumer("tracking", TrackingSettings, lambda topics: topics.detections, build)
