"""The rollout controller: judges a running rollout on live evidence and promotes or rolls back.

It reads what inference publishes (detections downstream, the other version's outputs on the
shadow topic) and the monitor's drift episodes, pairs the frames both versions answered
(services/rollout/window.py), adds the inference replicas' request figures, and judges the
window against the policy (services/rollout/gates.py). Decisions run on a worker thread: a
promote waits for every replica, which must not stall the consumer past its poll interval.
A rollout started with `--manual` is judged and reported, never decided.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor

import redis
from google.protobuf.message import Message
from opentelemetry import trace
from prometheus_client import Counter, Gauge

from services.core.errors import TransientError
from services.core.handler import Handler
from services.core.messages import Output
from services.rollout import events
from services.rollout import state as rollout
from services.rollout import window as windows
from services.rollout.control import RolloutError, Rollouts
from services.rollout.gates import Evidence, Verdict, judge
from services.rollout.policy import Policy
from services.rollout.state import RolloutState
from services.rollout.usage import VersionUsage, between
from services.rollout.window import Pairs, Window, agreement_of
from steadyeye.v1.detections_pb2 import Detections
from steadyeye.v1.drift_pb2 import DriftEvent, DriftState
from steadyeye.v1.rollouts_pb2 import RolloutStep

log = logging.getLogger(__name__)
# How often each Triton's loaded versions are checked against the state (a restarted Triton
# loads what its repository copy lists, which may be an older version).
RECONCILE_EVERY_S = 10.0
# While no rollout runs, how often a message makes the controller look for a new one (ticks come
# only about once a second, and a burst of frames would go uncounted meanwhile).
REFRESH_IDLE_S = 0.2

steps_total = Counter(
    "steadyeye_rollout_steps_total",
    "Rollout steps the controller took (evaluated windows, promotions, roll-backs)",
    ["model", "step"],
)
evidence_gauge = Gauge(
    "steadyeye_rollout_evidence",
    "The running rollout's current window: frames, box_f1, class_f1, detections_ratio, ...",
    ["model", "figure"],
)


class RolloutController(Handler):
    def __init__(
        self, rollouts: Rollouts, redis_client: redis.Redis, model: str, policy: Policy,
        max_waiting_frames: int,
    ) -> None:  # fmt: skip
        self._rollouts, self._redis, self._model, self._policy = (
            rollouts, redis_client, model, policy,
        )  # fmt: skip
        self._pairs = Pairs(max_waiting_frames)
        self._state: RolloutState | None = None
        self._window: Window | None = None
        self._acting: Future | None = None
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="rollout-step")
        self._tracer = trace.get_tracer("steadyeye.rollout")
        self._stale = True  # state and window to be read from Redis before the next use
        self._next_reconcile = 0.0
        self._next_refresh = 0.0

    def handle(self, message: Message) -> list[Output]:
        try:
            self._sync()
            if (self._state is None or not self._state.active) and self._due_refresh():
                # A rollout started since the last tick: its first frames must not go uncounted.
                self._state = rollout.load(self._redis, self._model)
                self._open_window()
        except redis.RedisError as exc:
            raise TransientError(f"rollout state unavailable: {exc}") from exc
        state, window = self._state, self._window
        if state is None or not state.active or window is None or self._acting is not None:
            return []
        if isinstance(message, DriftEvent):
            if (
                message.state == DriftState.DRIFT_STATE_STARTED
                and state.mode == "canary"
                and state.version_for(message.ref.camera_id) == state.candidate
            ):
                window.drift_events += 1
            return []
        assert isinstance(message, Detections)
        ref = message.ref
        if message.model.name != self._model or not state.shadow_version(
            ref.camera_id, ref.frame_id
        ):
            return []  # not a frame both versions answer
        pair = self._pairs.add(message, state.serving, state.candidate)  # type: ignore[arg-type]
        if pair is not None:
            window.agreement.add(agreement_of(*pair, self._policy.agreement))
            for d in (*pair[0].detections, *pair[1].detections):
                window.class_names.setdefault(d.class_id, d.class_name)
        return []

    def tick(self) -> list[Output]:
        if self._acting is not None:
            if not self._acting.done():
                return []
            self._acting = None
        try:
            self._rollouts.settle(self._model, stale_s=2 * self._rollouts.wait_s + 10)
            if time.monotonic() >= self._next_reconcile:
                self._next_reconcile = time.monotonic() + RECONCILE_EVERY_S
                for url in self._rollouts.reconcile(self._model):
                    log.warning("Triton at %s served other versions of %s: reloaded", url,
                                self._model)  # fmt: skip
            self._sync()
            self._state = rollout.load(self._redis, self._model)
            self._open_window()
            if self._state is not None and self._state.active and self._window is not None:
                self._evaluate(self._state, self._window)
        except (RolloutError, redis.RedisError) as exc:
            log.warning("rollout of %s not evaluated now: %s", self._model, exc)
        return []

    def _due_refresh(self) -> bool:
        """At most every REFRESH_IDLE_S while no rollout runs: one GET, whatever the traffic."""
        now = time.monotonic()
        if now < self._next_refresh:
            return False
        self._next_refresh = now + REFRESH_IDLE_S
        return True

    def before_commit(self) -> None:
        if self._window is not None:
            windows.save(self._redis, self._model, self._window)

    def reload_state(self) -> None:
        """Back to the window saved with the last committed offsets (what came after them is
        redelivered), read on the next use."""
        self._stale = True

    def _sync(self) -> None:
        if self._stale:
            self._state = rollout.load(self._redis, self._model)
            self._window = windows.load(self._redis, self._model)
            self._pairs.clear()
            self._stale = False
        self._open_window()

    def _open_window(self) -> None:
        """A window for the running rollout; none (and none saved) once it ended."""
        state = self._state
        if state is None or not state.active:
            if self._window is not None:
                windows.discard(self._redis, self._model)
                self._window = None
                self._pairs.clear()
        elif self._window is None or self._window.rollout_id != state.rollout_id:
            self._window = Window(state.rollout_id, baseline=self._usage())
            self._pairs.clear()

    def close(self) -> None:
        self._worker.shutdown(wait=True)

    def _usage(self) -> dict[str, dict[str, VersionUsage]]:
        return {
            name: replica.usage
            for name, replica in rollout.replica_reports(self._redis, self._model).items()
        }

    def _evaluate(self, state: RolloutState, window: Window) -> None:
        usage = between(window.baseline, self._usage())
        evidence = Evidence(
            window.agreement,
            serving=usage.get(state.serving, VersionUsage()),
            candidate=usage.get(state.candidate or "", VersionUsage()),
            drift_events=window.drift_events,
            class_names=window.class_names,
        )
        verdict = judge(evidence, self._policy)
        figures = {**evidence.figures(), "window": window.number}
        for name, value in figures.items():
            evidence_gauge.labels(self._model, name).set(value)
        rules = self._policy.rollout
        if verdict.breaches:
            self._decide(state, "rolled_back", _breach_reason(verdict), figures, verdict.breaches)
        elif verdict.passed:
            reason = (
                f"every gate held on window {window.number} ({window.agreement.frames} frames "
                f"compared): box F1 {figures.get('box_f1', 0):.3f}, class F1 "
                f"{figures.get('class_f1', 0):.3f}, detections ratio "
                f"{figures.get('detections_ratio', 0):.2f}"
            )
            self._decide(state, "promoted", reason, figures, [])
        elif verdict.complete:
            self._publish_window(state, figures, verdict.failed)
            if window.failed_windows + 1 >= rules.max_windows:
                reason = (
                    f"{rules.max_windows} windows without every gate holding; the last: "
                    + "; ".join(verdict.failed)
                )
                self._decide(state, "rolled_back", reason, figures, verdict.failed)
            else:
                self._window = window.next(self._usage())
        elif time.time() - state.started_at > rules.max_duration_s:
            reason = (
                f"no decision within {rules.max_duration_s:g}s: {window.agreement.frames} "
                f"frames compared in window {window.number}"
            )
            self._decide(state, "rolled_back", reason, figures, ["max_duration_s"])

    def _publish_window(self, state: RolloutState, figures: dict, failed: list[str]) -> None:
        steps_total.labels(self._model, "evaluated").inc()
        step = RolloutStep.ROLLOUT_STEP_EVALUATED
        self._rollouts.publish(events.event(state, step, figures, failed))

    def _decide(
        self, state: RolloutState, step: str, reason: str, figures: dict, failed: list[str]
    ) -> None:
        if not state.auto:
            return self._manual(state, step, reason, figures, failed)
        log.info("rollout %s of %s: %s (%s)", state.rollout_id, self._model, step, reason)
        self._acting = self._worker.submit(self._act, state, step, reason, figures, failed)
        return None

    def _manual(
        self, state: RolloutState, step: str, reason: str, figures: dict, failed: list[str]
    ) -> None:
        """A manual rollout: the verdict is reported once per window; an operator decides."""
        assert self._window is not None
        self._publish_window(state, {**figures, "would_promote": float(step == "promoted")},
                             failed or [f"would {step.replace('_', ' ')}: {reason}"])  # fmt: skip
        self._window = self._window.next(self._usage())

    def _act(
        self, state: RolloutState, step: str, reason: str, figures: dict, failed: list[str]
    ) -> None:
        with self._tracer.start_as_current_span(
            f"rollout {step}",
            attributes={
                "steadyeye.model.name": self._model,
                "steadyeye.rollout.id": state.rollout_id,
                "steadyeye.rollout.serving_version": state.serving,
                "steadyeye.rollout.candidate_version": state.candidate or "",
                "steadyeye.rollout.reason": reason,
            },
        ):
            try:
                if step == "promoted":
                    self._rollouts.promote(self._model, reason, figures)
                else:
                    self._rollouts.abort(self._model, reason, step, figures, failed)
            except RolloutError as exc:
                # Saved unsettled: the next settle() finishes it once its wait runs out.
                log.error("rollout %s of %s: %s failed: %s", state.rollout_id, self._model,
                          step, exc)  # fmt: skip
                return
        steps_total.labels(self._model, step).inc()


def _breach_reason(verdict: Verdict) -> str:
    return "hard breach: " + "; ".join(verdict.breaches)
