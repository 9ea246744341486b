"""Claim-check: payloads above a size threshold are stored for a while, Kafka carries the key.

Two stores: Redis (any host can read) and files on a tmpfs shared by services on one host
(`STEADYEYE_CLAIM_CHECK_STORE=shm`), which spares each frame two network copies and Redis's CPU.
"""

from __future__ import annotations

import hashlib
import logging
import mmap
import os
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import redis
from redis.connection import PythonRespSerializer

from services.core.errors import PoisonMessage, TransientError
from services.core.payload_keys import Scope
from services.core.settings import ClaimCheckSettings, RedisSettings
from steadyeye.v1.common_pb2 import ClaimCheck, Payload

log = logging.getLogger(__name__)

# A payload read from the store: bytes, or a read-only map of a shared-memory file (bytes-like:
# len, slicing, find, and numpy views without a copy).
Data = bytes | mmap.mmap
# A payload named by a record, and the keys that record may name (services.core.payload_keys).
Claim = tuple[Payload, Scope]


class _Connection(redis.Connection):
    """hiredis parses replies fast, but its command packer copies a large value byte by byte
    (2.6 ms for a 1.3 MB frame); redis-py's own packer sends it as its own buffer (0.7 ms)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._command_packer = PythonRespSerializer(self._buffer_cutoff, self.encoder.encode)


def connect(settings: RedisSettings) -> redis.Redis:
    password = settings.password.get_secret_value() if settings.password else None
    pool = redis.ConnectionPool.from_url(
        settings.url,
        **({"username": settings.username} if settings.username else {}),
        password=password,
        # No CLIENT SETINFO on connect: it is not among any service's ACL commands (Redis 7.2+
        # would log each refusal).
        driver_info=None,
        socket_timeout=5,
        socket_connect_timeout=5,
        **({"connection_class": _Connection} if settings.url.startswith("redis://") else {}),
    )
    return redis.Redis(connection_pool=pool)


def open_store(
    settings: ClaimCheckSettings, redis_client: Callable[[], redis.Redis]
) -> PayloadStore:
    if settings.store == "shm":
        return SharedMemoryStore(settings)
    return RedisStore(redis_client(), settings)


class PayloadStore(ABC):
    # Appended to "is missing": where else a payload could have gone.
    missing_because = "expired or evicted"

    def __init__(self, settings: ClaimCheckSettings) -> None:
        self._threshold = settings.threshold_bytes
        self._ttl_s = settings.ttl_s

    def put(self, key: str, data: bytes | memoryview) -> Payload:
        """Inline when small; otherwise stored under `key` for the TTL. A deterministic `key`
        lets a retry overwrite instead of leaving a copy to the TTL; a payload its reader
        deletes needs one key per message instead (preprocess's tensors). A memoryview is
        stored without copying; an image's is flattened to bytes so its length is its size."""
        data = memoryview(data).cast("B")
        if len(data) <= self._threshold:
            return Payload(inline=data.tobytes())
        self._write(key, data)
        return Payload(claim_check=ClaimCheck(key=key, size_bytes=len(data)))

    def get(self, payload: Payload, scope: Scope) -> Data:
        [data] = self.get_many([(payload, scope)])
        if isinstance(data, PoisonMessage):
            raise data
        return data

    def get_many(self, claims: list[Claim]) -> list[Data | PoisonMessage]:
        """Every payload in one request; a missing, malformed or foreign one (a key outside its
        record's scope: never read) comes back as its PoisonMessage, the others are unaffected.
        A store that is down raises TransientError."""
        results: list[Data | PoisonMessage | None] = [_refusal(p, s) for p, s in claims]
        wanted = [i for i, (p, _) in enumerate(claims) if results[i] is None and _stored(p)]
        found = self._read([claims[i][0].claim_check.key for i in wanted])
        for i, data in zip(wanted, found, strict=True):
            results[i] = self._checked(claims[i][0].claim_check, data)
        for i, (payload, _) in enumerate(claims):
            if results[i] is None:
                results[i] = payload.inline
        return results  # type: ignore[return-value]  # every slot is filled above

    def find(self, key: str) -> Data | None:
        """A stored payload by a key the caller composed (never one read from a record),
        whatever its size; None when it is not (or no longer) there. A store that is down
        raises TransientError."""
        [data] = self._read([key])
        return data

    def discard(self, claims: list[Claim]) -> None:
        """Delete payloads nobody will read again; whatever is missed expires with its TTL.
        Only keys inside their record's scope are ever deleted."""
        keys = [p.claim_check.key for p, s in claims if _stored(p) and s.owns(p.claim_check.key)]
        if keys:
            self._delete(keys)

    def _checked(self, check: ClaimCheck, data: Data | None) -> Data | PoisonMessage:
        if data is None:
            return PoisonMessage(
                f"claim-check payload {check.key!r} is missing ({self.missing_because})"
            )
        if len(data) != check.size_bytes:
            return PoisonMessage(
                f"claim-check payload {check.key!r} has {len(data)} bytes, "
                f"expected {check.size_bytes}"
            )
        return data

    @abstractmethod
    def _write(self, key: str, data: memoryview) -> None: ...

    @abstractmethod
    def _read(self, keys: list[str]) -> list[Data | None]: ...

    @abstractmethod
    def _delete(self, keys: list[str]) -> None: ...


def _stored(payload: Payload) -> bool:
    return payload.WhichOneof("location") == "claim_check"


def _refusal(payload: Payload, scope: Scope) -> PoisonMessage | None:
    """Why a record's payload must not be touched, or None."""
    which = payload.WhichOneof("location")
    if which is None:
        return PoisonMessage("payload is empty: neither inline bytes nor a claim check")
    if which == "claim_check" and not scope.owns(payload.claim_check.key):
        return PoisonMessage(
            f"claim-check key {payload.claim_check.key[:200]!r} is not one of the {scope}: "
            "refused, nothing read or deleted"
        )
    return None


class RedisStore(PayloadStore):
    def __init__(self, client: redis.Redis, settings: ClaimCheckSettings) -> None:
        super().__init__(settings)
        self._redis = client

    def _write(self, key: str, data: memoryview) -> None:
        try:
            self._redis.set(key, data, ex=self._ttl_s)
        except redis.RedisError as exc:
            raise TransientError(f"redis unavailable storing {key}: {exc}") from exc

    def _read(self, keys: list[str]) -> list[Data | None]:
        try:
            return self._redis.mget(keys) if keys else []
        except redis.RedisError as exc:
            shown = ", ".join(keys[:3]) + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")
            raise TransientError(f"redis unavailable reading {shown}: {exc}") from exc

    def _delete(self, keys: list[str]) -> None:
        try:
            self._redis.unlink(*keys)  # frees them off the request path
        except redis.RedisError as exc:
            log.warning("could not delete %d payloads, left to TTL: %s", len(keys), exc)


class SharedMemoryStore(PayloadStore):
    """One file per payload in a directory on a tmpfs. A writer writes a temporary file and
    renames it, so a reader sees a whole payload or none; a reader maps it instead of copying.
    Writers delete files older than the TTL every quarter TTL (at most every 10 s)."""

    missing_because = (
        "expired, or written on another host: STEADYEYE_CLAIM_CHECK_STORE=shm needs every "
        "service on one host, sharing STEADYEYE_CLAIM_CHECK_SHM_DIR"
    )

    def __init__(self, settings: ClaimCheckSettings) -> None:
        super().__init__(settings)
        self.directory = settings.shm_dir
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._expire_every_s = min(10.0, self._ttl_s / 4)
        self._next_expiry = 0.0
        self._lock = threading.Lock()  # ingest writes from one thread per camera

    def _path(self, key: str) -> Path:
        # Quoted, so no key names a path outside the directory ("/" and ".." included); one
        # too long for a file name (a 200-character camera id of slashes) goes by its hash.
        name = quote(key, safe=":")
        if len(name) > 200:
            name = hashlib.sha256(key.encode()).hexdigest()
        return self.directory / f"{name}.payload"

    def _write(self, key: str, data: memoryview) -> None:
        path = self._path(key)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
        try:
            with open(temporary, "wb") as file:
                file.write(data)
            os.replace(temporary, path)
        except OSError as exc:
            temporary.unlink(missing_ok=True)
            raise TransientError(
                f"shared memory cannot store {key} in {self.directory}: {exc}"
            ) from exc
        if time.monotonic() >= self._next_expiry:
            self.expire()

    def _read(self, keys: list[str]) -> list[Data | None]:
        return [self._map(key) for key in keys]

    def _map(self, key: str) -> Data | None:
        try:
            with open(self._path(key), "rb") as file:
                size = os.fstat(file.fileno()).st_size
                # The map outlives the file's name: a delete or an expiry does not pull the
                # pixels from under a reader.
                return mmap.mmap(file.fileno(), size, prot=mmap.PROT_READ) if size else b""
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise TransientError(f"shared memory cannot read {key}: {exc}") from exc

    def _delete(self, keys: list[str]) -> None:
        for key in keys:
            try:
                self._path(key).unlink(missing_ok=True)
            except OSError as exc:
                log.warning("could not delete payload %r, left to TTL: %s", key, exc)

    def expire(self) -> int:
        """Delete payloads (and torn temporary files) older than the TTL; returns how many."""
        with self._lock:
            self._next_expiry = time.monotonic() + self._expire_every_s
            oldest = time.time() - self._ttl_s
            expired = 0
            for entry in os.scandir(self.directory):
                try:
                    if entry.stat().st_mtime < oldest:
                        os.unlink(entry.path)
                        expired += 1
                except FileNotFoundError:  # another writer expired it first
                    pass
            return expired
