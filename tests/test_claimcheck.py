"""The claim-check stores: one contract for Redis (real server) and shared memory (real files),
then what only the shared-memory store has to get right: keys that are not file names, the
TTL, and readers that outlive a delete."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import redis
from hypothesis import given
from hypothesis import strategies as st

from services.core.claimcheck import PayloadStore, RedisStore, SharedMemoryStore, open_store
from services.core.errors import PoisonMessage
from services.core.payload_keys import READY
from services.core.settings import ClaimCheckSettings
from steadyeye.v1.common_pb2 import ClaimCheck, FrameRef, Payload

THRESHOLD = 16
BIG = bytes(range(256)) * 8  # 2 KiB: claim-checked
SMALL = b"tiny"  # inline


def shm_store(directory: Path, ttl_s: int = 120) -> SharedMemoryStore:
    settings = ClaimCheckSettings(
        store="shm", shm_dir=directory, threshold_bytes=THRESHOLD, ttl_s=ttl_s
    )
    return SharedMemoryStore(settings)


@pytest.fixture(params=["redis", "shm"])
def store(request, tmp_path: Path) -> Iterator[PayloadStore]:
    if request.param == "shm":
        yield shm_store(tmp_path / "payloads")
        return
    client = request.getfixturevalue("local_redis")
    yield RedisStore(client, ClaimCheckSettings(threshold_bytes=THRESHOLD))


# Every payload here belongs to one record; its scope is the keys that record may name.
REF = FrameRef(camera_id=f"claimcheck-{uuid.uuid4().hex[:8]}", frame_id=7)
SCOPE = READY.of(REF)


def key() -> str:
    return READY.key(REF.camera_id, REF.frame_id)


def checked(k: str, size: int = len(BIG)) -> Payload:
    return Payload(claim_check=ClaimCheck(key=k, size_bytes=size))


def test_small_payloads_travel_inline_and_large_ones_by_key(store):
    assert store.put(key(), SMALL) == Payload(inline=SMALL)
    k = key()
    payload = store.put(k, BIG)
    assert payload == checked(k)
    assert bytes(store.get(payload, SCOPE)) == BIG


def test_an_image_is_stored_without_a_copy_and_read_back_as_an_array(store):
    image = np.arange(48 * 32 * 3, dtype=np.uint8).reshape(48, 32, 3)
    payload = store.put(key(), image.data)
    back = np.frombuffer(store.get(payload, SCOPE), np.uint8).reshape(image.shape)
    assert np.array_equal(back, image)


def test_get_many_answers_each_payload_on_its_own(store):
    k = key()
    store.put(k, BIG)
    payloads = [Payload(inline=SMALL), checked(k), checked(key()), checked(k, len(BIG) + 1)]
    results = store.get_many([(p, SCOPE) for p in [*payloads, Payload()]])
    assert [bytes(r) for r in results[:2]] == [SMALL, BIG]
    reasons = [str(r) for r in results[2:]]
    assert all(isinstance(r, PoisonMessage) for r in results[2:])
    assert "is missing (" in reasons[0]
    assert f"has {len(BIG)} bytes, expected {len(BIG) + 1}" in reasons[1]
    assert "neither inline bytes nor a claim check" in reasons[2]


def test_a_discarded_payload_is_gone_and_the_others_stay(store):
    gone, kept = key(), key()
    store.put(gone, BIG)
    store.put(kept, BIG)
    store.discard([(checked(gone), SCOPE), (Payload(inline=SMALL), SCOPE)])
    store.discard([(checked(gone), SCOPE)])  # twice is harmless
    with pytest.raises(PoisonMessage, match="is missing"):
        store.get(checked(gone), SCOPE)
    assert bytes(store.get(checked(kept), SCOPE)) == BIG


def test_a_retry_overwrites_the_same_key(store):
    k = key()
    store.put(k, BIG)
    store.put(k, BIG[::-1])
    assert bytes(store.get(checked(k), SCOPE)) == BIG[::-1]


@pytest.mark.parametrize(
    "foreign",
    [
        f"steadyeye:state:tracker:{REF.camera_id}",  # tracker state
        "steadyeye:alert:sent:0123abcd",  # an alert dedup record
        READY.key("another-camera", REF.frame_id),
        READY.key(REF.camera_id, REF.frame_id + 1),  # the same camera's next frame
        f"steadyeye:frame:{REF.camera_id}:{REF.frame_id}",  # its frame, not its tensor
        READY.key(f"{REF.camera_id}:{REF.frame_id}", 12345678),  # a camera id with a colon
        READY.key(REF.camera_id, REF.frame_id) + "0",
        f"session:{REF.camera_id}",  # outside steadyeye:
        "../../etc/passwd",
        "",
    ],
)
def test_a_key_outside_the_records_scope_is_neither_read_nor_deleted(store, foreign):
    store.put(foreign, BIG)
    [refused] = store.get_many([(checked(foreign), SCOPE)])
    store.discard([(checked(foreign), SCOPE)])
    assert isinstance(refused, PoisonMessage)
    assert f"{foreign!r} is not one of the ready payloads of camera" in str(refused)
    assert bytes(store.find(foreign)) == BIG


@pytest.mark.parametrize(
    ("settings", "kind"),
    [
        pytest.param({"store": "redis"}, RedisStore, id="redis"),
        pytest.param({"store": "shm"}, SharedMemoryStore, id="shm"),
    ],
)
def test_the_setting_chooses_the_store(tmp_path, settings, kind):
    chosen = open_store(
        ClaimCheckSettings(**settings, shm_dir=tmp_path), lambda: redis.Redis.from_url("redis://")
    )
    assert type(chosen) is kind


# --- Shared memory only ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "hostile",
    ["../../escaped", "/absolute", "..", ".", "a/b/c", "", "nul\x00byte", "ümlaut:é"],
)
def test_no_key_names_a_file_outside_the_directory(tmp_path, hostile):
    directory = tmp_path / "payloads"
    payloads = shm_store(directory)
    payloads.put(hostile, BIG)
    assert bytes(payloads.find(hostile)) == BIG
    outside = {p for p in tmp_path.rglob("*") if directory not in (p, *p.parents)}
    assert outside == set()
    assert len(list(directory.iterdir())) == 1


def test_a_key_too_long_for_a_file_name_is_stored_under_its_hash(tmp_path):
    payloads = shm_store(tmp_path)
    for long in ("/" * 200, "k" * 10_000):  # a camera id of 200 slashes quotes to 600 chars
        payloads.put(long, BIG)
        assert bytes(payloads.find(long)) == BIG
    assert len(list(tmp_path.iterdir())) == 2


@given(st.text(max_size=300))
def test_any_key_reads_back_what_was_stored(tmp_path_factory, any_key):
    payloads = shm_store(tmp_path_factory.mktemp("payloads"))
    payloads.put(any_key, BIG)
    assert bytes(payloads.find(any_key)) == BIG


def test_a_reader_keeps_its_pixels_when_the_payload_is_deleted_under_it(tmp_path):
    payloads = shm_store(tmp_path)
    k = key()
    payloads.put(k, BIG)
    data = payloads.get(checked(k), SCOPE)
    payloads.discard([(checked(k), SCOPE)])
    payloads.expire()
    assert bytes(data) == BIG


def test_payloads_older_than_the_ttl_expire_and_fresh_ones_stay(tmp_path):
    payloads = shm_store(tmp_path, ttl_s=60)
    old, fresh = key(), key()
    payloads.put(old, BIG)
    payloads.put(fresh, BIG)
    torn = tmp_path / ".torn-by-a-crash"  # a writer killed between write and rename
    torn.write_bytes(b"partial")
    an_hour_ago = time.time() - 3600
    for path in (payloads._path(old), torn):
        os.utime(path, (an_hour_ago, an_hour_ago))
    assert payloads.expire() == 2
    with pytest.raises(PoisonMessage, match="another host"):  # says where else it could be
        payloads.get(checked(old), SCOPE)
    assert bytes(payloads.get(checked(fresh), SCOPE)) == BIG


def test_writing_expires_old_payloads_without_being_asked(tmp_path):
    payloads = shm_store(tmp_path, ttl_s=4)  # expiry at most every ttl/4 = 1 s
    old = key()
    payloads.put(old, BIG)
    os.utime(payloads._path(old), (time.time() - 60, time.time() - 60))
    time.sleep(1.1)
    payloads.put(key(), BIG)
    assert not payloads._path(old).exists()
