"""The steps of a rollout, in the order that loses no frame (docs/design/model-rollout.md §2):
state first, then Triton. A version is unloaded only once no inference replica uses it; a
candidate is loaded before any replica is told to use it.

Each step is saved unsettled, carried out, announced as a RolloutEvent, then saved settled: a
step whose actor died half-way (an operator's command, a killed controller) is finished by the
controller (`settle`) with the same outcome and one event.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import redis

from services.rollout import events
from services.rollout import state as rollout
from services.rollout.state import Mode, RolloutState
from services.rollout.tritons import Tritons, TritonsError
from steadyeye.v1.rollouts_pb2 import RolloutEvent

Publish = Callable[[RolloutEvent], None]


class RolloutError(Exception):
    """The step cannot be taken (no rollout running, a version missing, Triton refused)."""


class Rollouts:
    def __init__(
        self,
        redis_client: redis.Redis,
        tritons: Tritons,
        repository: Path,
        publish: Publish,
        wait_s: float = 60.0,
    ) -> None:
        self.redis, self.tritons, self.repository = redis_client, tritons, repository
        self.publish, self.wait_s = publish, wait_s

    def current(self, model: str) -> RolloutState:
        """The stored state, else what replicas default to: the highest version served."""
        found = rollout.load(self.redis, model)
        if found is not None:
            return found
        versions = self.ready_versions(model)
        return RolloutState(model, str(max(versions)) if versions else "1")

    def ready_versions(self, model: str) -> list[int]:
        return self.tritons.ready_versions(model)

    def start(
        self,
        model: str,
        candidate: str,
        mode: Mode,
        percent: float,
        compare_percent: float = 10.0,
        auto: bool = True,
    ) -> RolloutState:
        """auto: the controller promotes or rolls back by itself; else it only reports."""
        now = self.current(model)
        if now.active or not now.settled:
            raise RolloutError(
                f"rollout {now.rollout_id} of {model} (candidate {now.candidate}) is "
                f"{'running' if now.active else 'ending'}: promote or abort it first"
            )
        if candidate == now.serving:
            raise RolloutError(f"version {candidate} of {model} is already serving")
        # Pin the serving version before the candidate loads: replicas without a state would
        # take the highest loaded version, the candidate. Unsettled: the controller's
        # reconciliation leaves Triton alone meanwhile.
        pinned = RolloutState(model, now.serving, settled=False)
        rollout.save(self.redis, pinned)
        try:
            self._load(model, [int(now.serving), int(candidate)])
            if not self._ready(model, candidate):
                raise RolloutError(f"Triton did not make version {candidate} of {model} ready")
        except RolloutError:
            self._settle(pinned)  # back to the serving version alone
            raise
        started = rollout.save(
            self.redis,
            replace(
                pinned,
                candidate=candidate,
                mode=mode,
                percent=percent,
                compare_percent=compare_percent,
                auto=auto,
                state="running",
                rollout_id=uuid.uuid4().hex[:12],
                started_at=time.time(),
                settled=False,
            ),
        )
        self._wait(
            lambda: all(candidate in used for used in self._replicas(model)),
            f"every inference replica to take up version {candidate}",
        )
        return self._settle(started)

    def promote(
        self, model: str, reason: str, evidence: dict[str, float] | None = None
    ) -> RolloutState:
        """serving := candidate; the old version goes once every replica serves the new one."""
        before = self._running(model)
        return self._end(
            replace(before, serving=before.candidate, retired=before.serving, state="promoted"),
            reason,
            evidence or {},
            [],
        )

    def abort(
        self,
        model: str,
        reason: str,
        step: str = "aborted",
        evidence: dict[str, float] | None = None,
        failed_gates: list[str] | None = None,
    ) -> RolloutState:
        """The candidate goes; serving never changed. step: aborted (an operator) or
        rolled_back (the controller)."""
        before = self._running(model)
        ended = replace(before, retired=before.candidate, state=step)  # type: ignore[arg-type]
        return self._end(ended, reason, evidence or {}, failed_gates or [])

    def settle(self, model: str, stale_s: float) -> RolloutState | None:
        """Finish a step left unsettled for stale_s (its actor is gone); None if none was."""
        found = rollout.load(self.redis, model)
        if found is None or found.settled or time.time() - found.updated_at < stale_s:
            return None
        return self._settle(found)

    def reconcile(self, model: str) -> list[str]:
        """Each Triton serves what the settled state uses (one restarted since serves what its
        repository copy lists); returns the Tritons reloaded."""
        found = rollout.load(self.redis, model)
        if found is None or not found.settled:
            return []
        versions = [int(v) for v in found.in_use()]
        try:
            return self.tritons.reconcile(model, self.repository / model, versions, self.wait_s)
        except TritonsError as exc:
            raise RolloutError(str(exc)) from exc

    def _end(
        self, ended: RolloutState, reason: str, evidence: dict[str, float], failed: list[str]
    ) -> RolloutState:
        saved = rollout.save(
            self.redis,
            replace(ended, reason=reason, evidence=evidence, failed_gates=failed, settled=False),
        )
        return self._settle(saved)

    def _settle(self, step: RolloutState) -> RolloutState:
        """Carry out the saved step in Triton (again, if it was done already: each part is
        idempotent), announce it, mark it settled."""
        model = step.model
        if step.state == "serving":  # a start that did not get the candidate ready
            self._load(model, [int(step.serving)])
            return rollout.save(self.redis, replace(step, settled=True))
        if step.state != "running" and step.retired:
            retired = step.retired
            self._wait(
                lambda: all(retired not in used for used in self._replicas(model)),
                f"every inference replica to stop using version {retired}",
            )
            self._load(model, [int(step.serving)])
            self._wait(
                lambda: not self.tritons.is_ready(model, retired), f"version {retired} to unload"
            )
        self.publish(events.event(step))
        return rollout.save(self.redis, replace(step, settled=True))

    def _running(self, model: str) -> RolloutState:
        now = self.current(model)
        if not now.active or not now.settled:
            raise RolloutError(f"no rollout of {model} is running (state: {now.state})")
        return now

    def _replicas(self, model: str) -> list[list[str]]:
        return list(rollout.replicas(self.redis, model).values())

    def _load(self, model: str, versions: list[int]) -> None:
        try:
            self.tritons.load(model, self.repository / model, versions, self.wait_s)
        except TritonsError as exc:
            raise RolloutError(str(exc)) from exc

    def _ready(self, model: str, version: str) -> bool:
        """Whether every Triton has made the version ready, waiting up to wait_s."""
        deadline = time.monotonic() + self.wait_s
        while time.monotonic() < deadline:
            try:
                if int(version) in self.tritons.ready_versions(model):
                    return True
            except TritonsError:
                pass  # one is restarting: its answer comes at the next try
            time.sleep(0.2)
        return False

    def _wait(self, done: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + self.wait_s
        while not done():
            if time.monotonic() > deadline:
                raise RolloutError(f"timed out after {self.wait_s:.0f}s waiting for {what}")
            time.sleep(0.2)
