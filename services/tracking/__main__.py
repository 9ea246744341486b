from services.core.runtime import Runtime, run_consumer
from services.core.statestore import StateStore
from services.tracking.handler import TrackingHandler
from services.tracking.settings import TrackingSettings


def build(runtime: Runtime[TrackingSettings]) -> TrackingHandler:
    config = runtime.settings.tracker_config()
    return TrackingHandler(StateStore(runtime.redis(), "tracker"), runtime.topics.tracks, config)


if __name__ == "__main__":
    run_consumer("tracking", TrackingSettings, lambda topics: topics.detections, build)
