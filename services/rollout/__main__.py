import sys

from services.core import kafka
from services.core.handler import Inputs
from services.core.runtime import Runtime, exit_if_unreachable, run_consumer
from services.core.settings import TopicSettings
from services.rollout import events
from services.rollout.control import Rollouts
from services.rollout.handler import RolloutController
from services.rollout.leadership import lead_or_wait
from services.rollout.policy import PolicyError, load_policy
from services.rollout.settings import RolloutSettings
from services.rollout.tritons import TritonsError, tritons_for
from steadyeye.v1.detections_pb2 import Detections
from steadyeye.v1.drift_pb2 import DriftEvent


def inputs(topics: TopicSettings) -> Inputs:
    """Both versions' answers (downstream and shadow) and the monitor's drift episodes."""
    return {topics.detections: Detections, topics.shadow: Detections, topics.drift: DriftEvent}


def build(runtime: Runtime[RolloutSettings]) -> RolloutController:
    settings = runtime.settings
    try:
        policy = load_policy(settings.policy)
        tritons = tritons_for(settings)
    except (PolicyError, TritonsError) as exc:
        print(f"steadyeye rollout: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    producer = exit_if_unreachable(runtime, lambda: kafka.producer(runtime.kafka))
    rollouts = Rollouts(
        runtime.redis(),
        tritons,
        settings.repository,
        lambda event: events.send(producer, runtime.topics.rollouts, event),
        settings.wait_s,
    )
    return RolloutController(
        rollouts, runtime.redis(), settings.model_name, policy, settings.max_waiting_frames
    )


if __name__ == "__main__":
    lead_or_wait()
    run_consumer("rollout", RolloutSettings, inputs, build)
