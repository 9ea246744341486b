"""Least privilege in Redis: each service connects as its own ACL user and is refused every key
and command it does not need. Against the stack's real redis-server, started with ACLs on."""

from __future__ import annotations

import pytest
import redis

from services.core import redis_acl
from services.core.claimcheck import connect
from services.core.settings import RedisSettings

pytestmark = pytest.mark.stack

# What every service must be refused: other services' state, and the whole server.
EVERYONE_REFUSED = [
    ("FLUSHALL",),
    ("CONFIG", "GET", "maxmemory"),
    ("KEYS", "*"),
    ("ACL", "LIST"),
    ("EVAL", "return 1", "0"),
    ("DEL", "steadyeye:state:tracker:cam-1"),
]
ALLOWED = {
    "ingest": [("SET", "steadyeye:frame:cam-1:0", "px", "EX", "5"),
               ("INCR", "steadyeye:ingest:cam-1:frame_id")],
    "preprocess": [("MGET", "steadyeye:frame:cam-1:0"),
                   ("SET", "steadyeye:ready:cam-1:0:0123abcd", "t", "EX", "5")],
    "inference": [("MGET", "steadyeye:ready:cam-1:0:0123abcd"),
                  ("UNLINK", "steadyeye:ready:cam-1:0:0123abcd"),
                  ("GET", "steadyeye:rollout:acl-test"),
                  ("HSET", "steadyeye:rollout-replicas:acl-test", "host-1", "{}")],
    "tracking": [("SET", "steadyeye:state:tracker:cam-1", "{}", "EX", "5"),
                 ("GET", "steadyeye:state:tracker:cam-1")],
    "monitor": [("SET", "steadyeye:state:monitor:cam-1", "{}", "EX", "5"),
                ("GET", "steadyeye:state:monitor:cam-1"),
                ("HGETALL", "steadyeye:monitor:commands"),
                ("HDEL", "steadyeye:monitor:commands", "cam-1"),
                ("XADD", "steadyeye:monitor:history:cam-1", "MAXLEN", "~", "10", "*", "z", "0")],
    "alert": [("MGET", "steadyeye:frame:cam-1:0"), ("EXISTS", "steadyeye:alert:sent:a"),
              ("HGETALL", "steadyeye:alert:last_seen"),
              ("SET", "steadyeye:snapshot:a.jpg", "jpg", "EX", "5")],
    "capture": [("MGET", "steadyeye:frame:cam-1:0", "steadyeye:capture:drift:cam-1"),
                ("SET", "steadyeye:capture:drift:cam-1", "{}", "EX", "5"),
                ("INCRBY", "steadyeye:capture:limit:r:minute:1:camera:cam-1", "1"),
                ("DECRBY", "steadyeye:capture:limit:r:minute:1:camera:cam-1", "1"),
                ("EXPIRE", "steadyeye:capture:limit:r:minute:1:camera:cam-1", "5"),
                ("LPUSH", "steadyeye:capture:recent:cam-1", "00 0.0 r"),
                ("LTRIM", "steadyeye:capture:recent:cam-1", "0", "9"),
                ("LRANGE", "steadyeye:capture:recent:cam-1", "0", "9"),
                ("EXPIRE", "steadyeye:capture:recent:cam-1", "5"),
                ("HINCRBY", "steadyeye:capture:stats", "captured", "1")],
    "rollout": [("GET", "steadyeye:rollout:acl-test"),
                ("SET", "steadyeye:rollout:window:acl-test", "{}"),
                ("UNLINK", "steadyeye:rollout:window:acl-test"),
                ("HGETALL", "steadyeye:rollout-replicas:acl-test")],
}  # fmt: skip
REFUSED = {
    "ingest": [("SET", "steadyeye:state:tracker:cam-1", "{}"), ("MGET", "steadyeye:ready:x")],
    "preprocess": [("SET", "steadyeye:frame:cam-1:0", "px"),  # reads frames, never writes
                   ("UNLINK", "steadyeye:ready:cam-1:0:0123abcd")],
    "inference": [("MGET", "steadyeye:frame:cam-1:0"), ("UNLINK", "steadyeye:frame:cam-1:0"),
                  ("SET", "steadyeye:rollout:acl-test", "{}")],  # the state is read-only
    "tracking": [("MGET", "steadyeye:frame:cam-1:0"), ("GET", "steadyeye:state:alert:cam-1")],
    "monitor": [("GET", "steadyeye:state:tracker:cam-1"), ("MGET", "steadyeye:frame:cam-1:0")],
    "alert": [("SET", "steadyeye:frame:cam-1:0", "px"), ("GET", "steadyeye:state:tracker:c"),
              ("UNLINK", "steadyeye:frame:cam-1:0")],
    "capture": [("SET", "steadyeye:frame:cam-1:0", "px"),  # reads frames, never writes
                ("UNLINK", "steadyeye:frame:cam-1:0"), ("GET", "steadyeye:state:monitor:cam-1"),
                ("SET", "steadyeye:alert:sent:a", "1"), ("DEL", "steadyeye:capture:stats")],
    "rollout": [("MGET", "steadyeye:frame:cam-1:0"), ("GET", "steadyeye:state:tracker:cam-1"),
                ("HSET", "steadyeye:rollout-replicas:acl-test", "host-1", "{}")],  # replicas' own
}  # fmt: skip


def as_service(stack, service: str) -> redis.Redis:
    if service not in stack.redis_passwords:
        pytest.skip("this stack's Redis would not let it create ACL users")
    settings = RedisSettings(
        url=stack.redis_url,
        username=redis_acl.username(service),
        password=stack.redis_passwords[service],
    )
    return connect(settings)


@pytest.mark.parametrize("service", sorted(redis_acl.RULES))
def test_a_service_may_do_what_it_needs_and_nothing_else(stack, service):
    client = as_service(stack, service)
    for command in ALLOWED[service]:
        client.execute_command(*command)
    for command in [*REFUSED[service], *EVERYONE_REFUSED]:
        with pytest.raises(redis.exceptions.NoPermissionError):
            client.execute_command(*command)
            pytest.fail(f"{service} was allowed {command}")


def test_the_running_services_are_connected_as_their_own_users(stack):
    if not stack.redis_passwords:
        pytest.skip("this stack's Redis would not let it create ACL users")
    users = {client["user"] for client in stack.redis_admin().client_list()}
    # ingest, preprocess and inference keep payloads in shared memory here, but ingest numbers
    # live frames and alert and tracking keep state in Redis.
    assert {"steadyeye-tracking", "steadyeye-alert"} <= users, users


def test_a_stack_started_redis_allows_no_anonymous_client(stack):
    if stack.settings.redis != "own":
        pytest.skip("a shared Redis is configured by its owner")
    with pytest.raises(redis.exceptions.AuthenticationError):
        redis.Redis.from_url(stack.redis_url).ping()


def test_the_acl_file_holds_no_password_in_clear():
    passwords = {name: f"pw-{name}-0123456789" for name in redis_acl.RULES}
    text = redis_acl.acl_file(passwords, "admin-secret-0123")
    assert not any(p in text for p in [*passwords.values(), "admin-secret-0123"])
    for name in redis_acl.RULES:
        [line] = [x for x in text.splitlines() if x.startswith(f"user steadyeye-{name} ")]
        assert " ".join(redis_acl.rules(name)) in line
