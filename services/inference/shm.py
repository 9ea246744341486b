"""Model inputs handed to Triton through system shared memory, when both run on one host.

A 416x416x3 uint8 tensor is 519 KB: through gRPC it is serialised, copied through the socket and
parsed again. Through a registered /dev/shm region it is one memcpy. One region per request in
flight; a region is reused only after its response has come back.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import time
import uuid
from collections.abc import Iterator

import numpy as np
import tritonclient.grpc as triton
import tritonclient.utils.shared_memory as shm
from tritonclient.utils import InferenceServerException

log = logging.getLogger(__name__)
UNREGISTER_ATTEMPTS = 40  # 50 ms apart


class SharedMemoryInputs:
    def __init__(self, client: triton.InferenceServerClient, count: int, byte_size: int) -> None:
        self._client = client
        self._size = byte_size
        prefix = f"steadyeye-{os.getpid()}-{uuid.uuid4().hex[:8]}"  # unique per process
        self._regions = [
            (name, shm.create_shared_memory_region(name, f"/{name}", byte_size))
            for name in (f"{prefix}-{i}" for i in range(count))
        ]
        self._free: queue.Queue[tuple[str, object]] = queue.Queue()
        for region in self._regions:
            self._free.put(region)
        self.register()

    def register(self) -> None:
        """(Re-)register every region: a restarted Triton has forgotten them."""
        for name, _ in self._regions:
            with contextlib.suppress(InferenceServerException):
                self._client.unregister_system_shared_memory(name)
            self._client.register_system_shared_memory(name, f"/{name}", self._size)

    @contextlib.contextmanager
    def input(self, infer_input: triton.InferInput, tensors: list[np.ndarray]) -> Iterator[None]:
        """Point `infer_input` at a region holding `tensors` back to back (a batch, without
        stacking them first) for the duration of one request."""
        name, handle = self._free.get()
        try:
            shm.set_shared_memory_region(handle, tensors)
            infer_input.set_shared_memory(name, sum(t.nbytes for t in tensors))
            yield
        finally:
            self._free.put((name, handle))

    def close(self) -> None:
        for name, handle in self._regions:
            self._unregister(name)
            shm.destroy_shared_memory_region(handle)

    def _unregister(self, name: str) -> None:
        # Triton releases a request a moment after answering it, and refuses to unregister a
        # region a request still holds ("currently in use"): wait that moment out.
        for _ in range(UNREGISTER_ATTEMPTS):
            try:
                self._client.unregister_system_shared_memory(name)
                return
            except InferenceServerException as exc:
                if "in use" not in str(exc):
                    log.warning("Triton shared-memory region %s not unregistered: %s", name, exc)
                    return
            time.sleep(0.05)
        log.warning("Triton shared-memory region %s still in use, left registered", name)
