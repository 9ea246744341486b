"""Whose fault a failed Triton request is: the frame's (dead-letter it) or the server's (retry,
rewind, never lose the frame). Measured texts: docs/design/degradation.md §2."""

from __future__ import annotations

from typing import Literal

from tritonclient.utils import InferenceServerException

Fault = Literal["frame", "server"]
# Why a tier is left (services/inference/health.py); the names of DegradedReason.
TierFault = Literal["latency", "unavailable", "queue_full", "oom"]

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


def tier_fault(exc: Exception) -> TierFault | None:
    """Whose fault a failed request to a tier with a tier after it is: the tier's (the frame
    goes on to the next tier) or None, the frame's or the configuration's (a full queue is
    UNAVAILABLE in Triton 2.51; RESOURCE_EXHAUSTED is gRPC's message size, which no tier fixes)."""
    if not isinstance(exc, InferenceServerException):
        return "unavailable"  # the channel broke under us
    status = (exc.status() or "").removeprefix("StatusCode.")
    text = str(exc).lower()
    if status == "DEADLINE_EXCEEDED":
        return "latency"
    if "exceeds maximum queue size" in text or "request timeout expired" in text:
        return "queue_full"
    if status == "INTERNAL" and any(marker in text for marker in OOM_TEXT):
        return "oom"
    if status in ("UNAVAILABLE", "CANCELLED", "NOT_FOUND") or "shared memory" in text:
        return "unavailable"  # shared memory: a restarted Triton forgot our regions
    return None
