"""Each rollout step as a RolloutEvent on steadyeye.rollouts.v1, keyed by model."""

from __future__ import annotations

from services.core import kafka
from services.core.messages import schema_headers
from services.core.settings import KafkaSettings, TopicSettings, load
from services.rollout.state import RolloutState
from steadyeye.v1.rollouts_pb2 import RolloutEvent, RolloutMode, RolloutStep

STEPS = {
    "running": RolloutStep.ROLLOUT_STEP_STARTED,
    "promoted": RolloutStep.ROLLOUT_STEP_PROMOTED,
    "rolled_back": RolloutStep.ROLLOUT_STEP_ROLLED_BACK,
    "aborted": RolloutStep.ROLLOUT_STEP_ABORTED,
}
MODES = {"shadow": RolloutMode.ROLLOUT_MODE_SHADOW, "canary": RolloutMode.ROLLOUT_MODE_CANARY}


def event(
    state: RolloutState,
    step: RolloutStep.ValueType | None = None,
    evidence: dict[str, float] | None = None,
    failed_gates: list[str] | None = None,
) -> RolloutEvent:
    """The step that led to `state` (or `step` on the running rollout: a judged window), with
    serving and candidate as they were before it."""
    message = RolloutEvent(
        rollout_id=state.rollout_id,
        model=state.model,
        serving_version=state.retired if state.state == "promoted" else state.serving,
        candidate_version=state.candidate or "",
        mode=MODES.get(state.mode or "", RolloutMode.ROLLOUT_MODE_UNSPECIFIED),
        percent=state.percent,
        step=STEPS[state.state] if step is None else step,
        reason=state.reason if step is None else "",
        evidence=state.evidence if evidence is None else evidence,
        failed_gates=state.failed_gates if failed_gates is None else failed_gates,
    )
    if step is None and state.updated_at:
        # When the step was taken (saved), not when it was carried out and announced.
        message.time.FromNanoseconds(int(state.updated_at * 1e9))
    else:
        message.time.GetCurrentTime()
    return message


def publish_once(message: RolloutEvent) -> None:
    """For a one-off command: a producer for this one event."""
    producer = kafka.producer(load(KafkaSettings))
    try:
        send(producer, load(TopicSettings).rollouts, message)
    finally:
        producer.close()


def send(producer: kafka.Producer, topic: str, message: RolloutEvent) -> None:
    producer.send(
        topic, key=message.model.encode(), value=message.SerializeToString(),
        headers=schema_headers(message),
    )  # fmt: skip
    producer.flush(timeout=30)
