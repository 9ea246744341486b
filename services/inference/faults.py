"""Whose fault a failed Triton request is: the frame's (dead-letter it) or the server's (retry,
rewind, never lose the frame). Measured texts: docs/design/degradation.md §2."""

from __future__ import annotations

from typing import Literal

from tritonclient.utils import InferenceServerException

Fault = Literal["frame", "server"]

# The model ran out of GPU memory: ONNX Runtime's BFC arena, CUDA, TensorRT. A bare "oom" would
# match "room" and "zoom".
OOM_TEXT = ("out of memory", "failed to allocate memory", "cudaerrormemoryallocation",
            "cuda failure 2")  # fmt: skip
_SERVER_STATUS = {
    "UNAVAILABLE",
    "DEADLINE_EXCEEDED",
    "RESOURCE_EXHAUSTED",
    "CANCELLED",
    "NOT_FOUND",
}


def fault_of(exc: InferenceServerException) -> Fault:
    """NOT_FOUND is a model still loading after a Triton restart; RESOURCE_EXHAUSTED is a full
    server, except a request larger than the channel allows, which no retry fixes (the batch
    is split and the frame that still does not fit is dead-lettered, with the reason). A GPU out
    of memory comes as INTERNAL but is the server's state, not the frame's."""
    status = (exc.status() or "").removeprefix("StatusCode.")
    text = str(exc).lower()
    if status == "RESOURCE_EXHAUSTED" and "larger than max" in text:
        return "frame"
    if status in _SERVER_STATUS or "unavailable" in text:
        return "server"
    if status == "INTERNAL" and any(marker in text for marker in OOM_TEXT):
        return "server"
    return "frame"
