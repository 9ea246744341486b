"""The steps of a rollout, in the order that loses no frame (docs/design/model-rollout.md §2):
state first, then Triton. A version is unloaded only once no inference replica uses it; a
candidate is loaded before any replica is told to use it."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import redis
import tritonclient.grpc as triton
from tritonclient.utils import InferenceServerException

from services.rollout import state as rollout
from services.rollout.state import Mode, RolloutState
from steadyeye.rollout.repository import set_versions


class RolloutError(Exception):
    """The step cannot be taken (no rollout running, a version missing, Triton refused)."""


class Rollouts:
    def __init__(
        self,
        redis_client: redis.Redis,
        client: triton.InferenceServerClient,
        repository: Path,
        wait_s: float = 60.0,
    ) -> None:
        self.redis, self.client, self.repository = redis_client, client, repository
        self.wait_s = wait_s

    def current(self, model: str) -> RolloutState:
        """The stored state, else what replicas default to: the highest version served."""
        found = rollout.load(self.redis, model)
        if found is not None:
            return found
        versions = self.ready_versions(model)
        return RolloutState(model, str(max(versions)) if versions else "1")

    def ready_versions(self, model: str) -> list[int]:
        index = self.client.get_model_repository_index(as_json=True).get("models", [])
        return sorted(
            int(m["version"]) for m in index if m.get("name") == model and m.get("state") == "READY"
        )

    def start(self, model: str, candidate: str, mode: Mode, percent: float) -> RolloutState:
        now = self.current(model)
        if now.active:
            raise RolloutError(
                f"rollout {now.rollout_id} of {model} (candidate {now.candidate}) is running: "
                "promote or abort it first"
            )
        if candidate == now.serving:
            raise RolloutError(f"version {candidate} of {model} is already serving")
        # Pin the serving version before the candidate loads: replicas without a state would
        # take the highest loaded version, the candidate.
        rollout.save(self.redis, replace(now, state="serving", candidate=None, mode=None))
        self._load(model, [int(now.serving), int(candidate)])
        if not self._ready(model, candidate):
            self._load(model, [int(now.serving)])
            raise RolloutError(f"Triton did not make version {candidate} of {model} ready")
        started = RolloutState(
            model,
            now.serving,
            candidate=candidate,
            mode=mode,
            percent=percent,
            state="running",
            rollout_id=uuid.uuid4().hex[:12],
            started_at=time.time(),
        )
        rollout.save(self.redis, started)
        self._wait(
            lambda: all(candidate in used for used in self._replicas(model)),
            f"every inference replica to take up version {candidate}",
        )
        return started

    def promote(self, model: str, reason: str = "") -> tuple[RolloutState, RolloutState]:
        """serving := candidate; the old version goes once every replica serves the new one."""
        before = self._running(model)
        after = replace(before, serving=before.candidate, candidate=None, state="promoted",
                        reason=reason)  # fmt: skip
        self._finish(after, unload=before.serving)
        return before, after

    def abort(
        self, model: str, reason: str, step: str = "aborted"
    ) -> tuple[RolloutState, RolloutState]:
        """The candidate goes; serving never changed."""
        before = self._running(model)
        after = replace(before, candidate=None, state=step, reason=reason)  # type: ignore[arg-type]
        self._finish(after, unload=before.candidate)  # type: ignore[arg-type]
        return before, after

    def _running(self, model: str) -> RolloutState:
        now = self.current(model)
        if not now.active:
            raise RolloutError(f"no rollout of {model} is running (state: {now.state})")
        return now

    def _finish(self, after: RolloutState, unload: str) -> None:
        rollout.save(self.redis, after)
        self._wait(
            lambda: all(unload not in used for used in self._replicas(after.model)),
            f"every inference replica to stop using version {unload}",
        )
        self._load(after.model, [int(after.serving)])
        self._wait(lambda: not self._is_ready(after.model, unload), f"version {unload} to unload")

    def _replicas(self, model: str) -> list[list[str]]:
        return list(rollout.replicas(self.redis, model).values())

    def _load(self, model: str, versions: list[int]) -> None:
        # The list on disk is what a restarted Triton loads; loading re-reads it.
        set_versions(self.repository / model, versions)
        try:
            self.client.load_model(model, client_timeout=self.wait_s)
        except InferenceServerException as exc:
            raise RolloutError(f"Triton did not load {model} versions {versions}: {exc}") from exc

    def _is_ready(self, model: str, version: str) -> bool:
        try:
            return bool(self.client.is_model_ready(model, version))
        except InferenceServerException:
            return False

    def _ready(self, model: str, version: str) -> bool:
        deadline = time.monotonic() + self.wait_s
        while time.monotonic() < deadline:
            if self._is_ready(model, version):
                return True
            time.sleep(0.2)
        return False

    def _wait(self, done: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + self.wait_s
        while not done():
            if time.monotonic() > deadline:
                raise RolloutError(f"timed out after {self.wait_s:.0f}s waiting for {what}")
            time.sleep(0.2)
