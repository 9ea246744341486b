"""A model's rollout state in Redis: which version serves, which candidate runs beside it, how.

One JSON value per model (`steadyeye:rollout:<model>`), written by `steadyeye rollout` (and the
rollout controller), read by every inference replica about once a second, so all replicas agree
and a restarted one resumes. Each replica reports the versions it sends requests to in a hash
(`steadyeye:rollout-replicas:<model>`), so a version is unloaded only once no replica uses it.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Literal

import redis

from services.rollout.usage import Snapshot, VersionUsage

Mode = Literal["shadow", "canary"]
# running: the candidate is loaded and in use; the other states are ends of a rollout.
State = Literal["serving", "running", "promoted", "aborted", "rolled_back"]
# A replica that has not reported for this long is gone (reports come about once a second).
REPLICA_FRESH_S = 10.0


def state_key(model: str) -> str:
    return f"steadyeye:rollout:{model}"


def replicas_key(model: str) -> str:
    return f"steadyeye:rollout-replicas:{model}"


@dataclass
class RolloutState:
    model: str
    serving: str
    candidate: str | None = None
    mode: Mode | None = None
    percent: float = 0.0  # of frames (shadow) or of cameras (canary)
    # Canary: the share of the candidate's frames the serving version answers too (to the
    # shadow topic), so the controller can compare the two on the same frames.
    compare_percent: float = 10.0
    state: State = "serving"
    reason: str = ""
    rollout_id: str = ""
    started_at: float = 0.0  # unix time
    # The controller decides (promote, roll back); False: it only reports its verdicts.
    auto: bool = True
    # Ends of a rollout keep `candidate` (the version tried); `retired` is the version the
    # step unloads (promoted: the old serving one; aborted, rolled back: the candidate).
    retired: str | None = None
    # The controller's figures behind the step, and the gates that did not hold.
    evidence: dict[str, float] = field(default_factory=dict)
    failed_gates: list[str] = field(default_factory=list)
    # The step that led to `state` is done in Triton and its RolloutEvent published; False
    # while it is under way (the controller finishes a step whose actor died).
    settled: bool = True
    updated_at: float = 0.0  # unix time of the last save

    @property
    def active(self) -> bool:
        return self.state == "running" and self.candidate is not None

    def version_for(self, camera_id: str) -> str:
        """The version whose detections go downstream for this camera."""
        if self.active and self.mode == "canary" and in_share(camera_id, self.percent):
            return self.candidate  # type: ignore[return-value]  # active: a candidate is set
        return self.serving

    def shadow_version(self, camera_id: str, frame_id: int) -> str | None:
        """The other version, when it answers this frame too (its outputs go to the shadow
        topic only): the candidate on a sample of frames (shadow), the serving version on a
        sample of the candidate's cameras' frames (canary); else None."""
        if not self.active:
            return None
        frame = f"{camera_id}/{frame_id}"
        if self.mode == "shadow" and in_share(frame, self.percent):
            return self.candidate
        if (
            self.mode == "canary"
            and in_share(camera_id, self.percent)
            and in_share(frame, self.compare_percent)
        ):
            return self.serving
        return None

    def in_use(self) -> list[str]:
        """Versions a replica following this state may send requests to."""
        return [self.serving, *([self.candidate] if self.active and self.candidate else [])]


def in_share(key: str, percent: float) -> bool:
    """Deterministic and consistent: the same key is always in or out, and a key in at some
    percent stays in at every higher percent (a stable bucket in 0..9999)."""
    bucket = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") % 10_000
    return bucket < percent * 100


def load(client: redis.Redis, model: str) -> RolloutState | None:
    raw = client.get(state_key(model))
    return None if raw is None else RolloutState(**json.loads(raw))


def save(client: redis.Redis, state: RolloutState) -> RolloutState:
    stamped = replace(state, updated_at=time.time())
    client.set(state_key(state.model), json.dumps(asdict(stamped), separators=(",", ":")))
    return stamped


def report(
    client: redis.Redis, model: str, replica: str, versions: list[str], usage: Snapshot
) -> None:
    """A replica's heartbeat: the versions it sends requests to now, and its running totals of
    requests per version (services/rollout/usage.py)."""
    entry = {
        "versions": versions,
        "at": time.time(),
        "usage": {version: totals.to_json() for version, totals in usage.items()},
    }
    client.hset(replicas_key(model), replica, json.dumps(entry, separators=(",", ":")))


@dataclass
class Replica:
    versions: list[str]
    usage: Snapshot


def replica_reports(
    client: redis.Redis, model: str, fresh_s: float = REPLICA_FRESH_S
) -> dict[str, Replica]:
    """Each live replica's report; replicas silent for fresh_s are left out."""
    now, live = time.time(), {}
    for name, raw in client.hgetall(replicas_key(model)).items():
        try:
            entry = json.loads(raw)
            at, versions = float(entry["at"]), [str(v) for v in entry["versions"]]
            usage = {str(v): VersionUsage.from_json(u) for v, u in entry.get("usage", {}).items()}
        except (ValueError, KeyError, TypeError, AttributeError):
            continue  # not a replica's report: ignore it rather than stall every step
        if now - at <= fresh_s:
            live[name.decode() if isinstance(name, bytes) else name] = Replica(versions, usage)
    return live


def replicas(
    client: redis.Redis, model: str, fresh_s: float = REPLICA_FRESH_S
) -> dict[str, list[str]]:
    """Each live replica's versions in use."""
    return {name: r.versions for name, r in replica_reports(client, model, fresh_s).items()}
