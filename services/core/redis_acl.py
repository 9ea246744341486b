"""Least privilege in Redis: one ACL user per service, allowed only its keys and commands.

Key patterns cannot tell one camera from another (record checks do that: services.core.keys);
they keep each service out of every other service's state: ingest cannot touch tracker state,
tracking cannot read frames, and no service can FLUSHALL, CONFIG, KEYS or SCRIPT anything.
The embedded stack and compose.yaml create these users; the Helm chart renders the same rules
(tests/test_helm.py checks they match this table).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import redis

# `%R~` read-only, `~` read and write (Redis >= 7.0). Commands are exactly those the service's
# code sends: a new one fails with NOPERM in the tests until it is listed here.
RULES: dict[str, str] = {
    # frames' pixels (claim-check store), live streams' frame counters, cameras' leases
    # (a transaction renews or releases a lease only while it is ours: services/ingest/lease.py)
    "ingest": (
        "~steadyeye:frame:* ~steadyeye:ingest:* "
        "+set +incr +get +del +pexpire +watch +unwatch +multi +exec"
    ),
    # reads frames, writes letterboxed tensors
    "preprocess": "%R~steadyeye:frame:* ~steadyeye:ready:* +mget +set",
    # reads tensors and deletes them once committed; reads the rollout state (which version
    # serves), reports the versions it uses (services/rollout/state.py)
    "inference": (
        "~steadyeye:ready:* %R~steadyeye:rollout:* ~steadyeye:rollout-replicas:* "
        "+mget +unlink +get +hset"
    ),
    "tracking": "~steadyeye:state:tracker:* +get +set",
    # per-camera reference and test state; operators' commands, signal history
    "monitor": ("~steadyeye:state:monitor:* ~steadyeye:monitor:* +get +set +hgetall +hdel +xadd"),
    # reads frames for snapshots; engine state, sent-alert records, last-seen times, snapshots
    "alert": (
        "%R~steadyeye:frame:* ~steadyeye:state:alert:* ~steadyeye:alert:* "
        "~steadyeye:snapshot:* +get +set +mget +exists +hgetall +hset"
    ),
    # reads frames to capture them; drift episodes, limit counters, recent captures' hashes,
    # counts (services/capture)
    "capture": (
        "%R~steadyeye:frame:* ~steadyeye:capture:* "
        "+mget +set +incrby +decrby +expire +lrange +lpush +ltrim +hincrby"
    ),
    # the rollout controller: the state it decides, its window of evidence, replicas' reports
    "rollout": "~steadyeye:rollout:* ~steadyeye:rollout-replicas:* +get +set +hgetall +unlink",
}
# Readers outside the pipeline, which the chart does not run (yet): the console reads frames'
# pixels and alerts' snapshots, and nothing else.
READERS: dict[str, str] = {"console": "%R~steadyeye:frame:* %R~steadyeye:snapshot:* +get +mget"}
# Before each service's rules: nothing but PING unless listed, no key or channel by default.
BASE = "on resetkeys resetchannels -@all +ping"


def username(service: str) -> str:
    return f"steadyeye-{service}"


def rules(service: str) -> list[str]:
    return [*BASE.split(), *(RULES.get(service) or READERS[service]).split()]


def acl_file(passwords: Mapping[str, str], admin_password: str) -> str:
    """An aclfile for a Redis of our own: the services' users, and `default` as the admin with a
    password (no anonymous access). Passwords are stored as SHA-256 hashes, never in clear."""
    lines = [f"user default on #{_sha256(admin_password)} ~* &* +@all"]
    for service, password in passwords.items():
        lines.append(
            " ".join(["user", username(service), *rules(service), f"#{_sha256(password)}"])
        )
    return "\n".join(lines) + "\n"


def provision(admin: redis.Redis, passwords: Mapping[str, str]) -> None:
    """Create or update the services' users in a running Redis. A password is added, not
    replacing others, so stacks sharing one Redis do not lock each other out."""
    for service, password in passwords.items():
        admin.execute_command("ACL", "SETUSER", username(service), *rules(service), f">{password}")


def revoke(admin: redis.Redis, passwords: Mapping[str, str]) -> None:
    """Remove these passwords again (a shared Redis keeps the users for other stacks)."""
    for service, password in passwords.items():
        admin.execute_command("ACL", "SETUSER", username(service), f"<{password}")


def _sha256(password: str) -> str:
    return hashlib.sha256(password.encode()).hexdigest()
