"""Each rollout step as a RolloutEvent on steadyeye.rollouts.v1, keyed by model."""

from __future__ import annotations

from services.core import kafka
from services.core.messages import schema_headers
from services.core.settings import KafkaSettings, TopicSettings, load
from services.rollout.state import RolloutState
from steadyeye.v1.rollouts_pb2 import RolloutEvent, RolloutMode, RolloutStep

STEPS = {
    "started": RolloutStep.ROLLOUT_STEP_STARTED,
    "promoted": RolloutStep.ROLLOUT_STEP_PROMOTED,
    "rolled_back": RolloutStep.ROLLOUT_STEP_ROLLED_BACK,
    "aborted": RolloutStep.ROLLOUT_STEP_ABORTED,
}
MODES = {"shadow": RolloutMode.ROLLOUT_MODE_SHADOW, "canary": RolloutMode.ROLLOUT_MODE_CANARY}


def event(step: str, before: RolloutState, reason: str = "") -> RolloutEvent:
    """The step taken on the rollout `before` describes (serving and candidate as they were)."""
    message = RolloutEvent(
        rollout_id=before.rollout_id,
        model=before.model,
        serving_version=before.serving,
        candidate_version=before.candidate or "",
        mode=MODES.get(before.mode or "", RolloutMode.ROLLOUT_MODE_UNSPECIFIED),
        percent=before.percent,
        step=STEPS[step],
        reason=reason,
    )
    message.time.GetCurrentTime()
    return message


def publish(message: RolloutEvent) -> None:
    producer = kafka.producer(load(KafkaSettings))
    try:
        producer.send(
            load(TopicSettings).rollouts,
            key=message.model.encode(),
            value=message.SerializeToString(),
            headers=schema_headers(message),
        )
        producer.flush(timeout=30)
    finally:
        producer.close()
