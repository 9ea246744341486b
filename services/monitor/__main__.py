from services.core.runtime import Runtime, run_consumer
from services.monitor.handler import MonitorHandler
from services.monitor.settings import MonitorSettings


def build(runtime: Runtime[MonitorSettings]) -> MonitorHandler:
    return MonitorHandler(runtime.redis(), runtime.topics.drift, runtime.settings)


if __name__ == "__main__":
    run_consumer("monitor", MonitorSettings, lambda topics: topics.detections, build)
