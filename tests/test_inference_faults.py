"""Whose fault a failed Triton request is (services/inference/faults.py), on the statuses and
texts Triton 2.51 / tritonclient 2.73 really return (docs/design/degradation.md §2): the server's
faults are retried and never lose a frame; only the frame's own go to the dead-letter topic."""

from __future__ import annotations

import pytest
from tritonclient.utils import InferenceServerException

from services.inference.faults import fault_of, tier_fault


@pytest.mark.parametrize(
    ("status", "text", "fault"),
    [
        ("UNAVAILABLE", "failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:"
         "8001: Failed to connect to remote host: Connection refused", "server"),
        ("UNAVAILABLE", "Request for unknown model: 'yolox_nano' version 1 is not at ready state",
         "server"),
        ("UNAVAILABLE", "[request id: <id_unknown>] Exceeds maximum queue size", "server"),
        ("DEADLINE_EXCEEDED", "Stream removed (Deadline Exceeded)", "server"),
        ("NOT_FOUND", "Request for unknown model: 'yolox_nano' is not found", "server"),
        # A GPU out of memory is the server's state, not the frame's: never dead-lettered.
        ("INTERNAL", "CUDA failure 2: out of memory ; GPU=0 ; expr=cudaMalloc((void**)&p, size);",
         "server"),
        ("INTERNAL", "onnx runtime error 6: Non-zero status code returned while running Conv "
         "node. BFCArena::AllocateRawInternal Failed to allocate memory for requested buffer",
         "server"),
        # A request over the channel's size limit: no retry fixes it (the frame is dead-lettered
        # once its batch was split), unlike a full server.
        ("RESOURCE_EXHAUSTED", "CLIENT: Sent message larger than max (519212 vs. 1000)", "frame"),
        ("RESOURCE_EXHAUSTED", "server is busy", "server"),
        ("INVALID_ARGUMENT", "unexpected shape for input 'images' for model 'yolox_nano'. "
         "Expected [-1,416,416,3], got [1,416,400,3]", "frame"),
        ("INTERNAL", "the model raised an error in room 3", "frame"),  # "oom" alone is no OOM
    ],
)  # fmt: skip
def test_a_failed_request_is_the_frames_fault_or_the_servers(status, text, fault):
    assert fault_of(InferenceServerException(text, f"StatusCode.{status}")) == fault


@pytest.mark.parametrize(
    ("status", "text", "tier_fault_is"),
    [
        ("UNAVAILABLE", "failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:"
         "8001: Failed to connect to remote host: Connection refused", "unavailable"),
        ("UNAVAILABLE", "Request for unknown model: 'yolox_nano' version 1 is not at ready state",
         "unavailable"),
        ("UNAVAILABLE", "[request id: <id_unknown>] Exceeds maximum queue size", "queue_full"),
        ("UNAVAILABLE", "Request timeout expired", "queue_full"),
        ("DEADLINE_EXCEEDED", "Stream removed (Deadline Exceeded)", "latency"),
        ("DEADLINE_EXCEEDED", "Deadline Exceeded", "latency"),
        ("INTERNAL", "CUDA failure 2: out of memory ; GPU=0 ; expr=cudaMalloc((void**)&p, size);",
         "oom"),
        ("INTERNAL", "onnx runtime error 6: BFCArena::AllocateRawInternal Failed to allocate "
         "memory for requested buffer of size 1048576", "oom"),
        ("INVALID_ARGUMENT", "Unable to find system shared memory region: 'steadyeye-1-ab-0'",
         "unavailable"),
        # The frame's or the configuration's fault: no other tier would answer it better.
        ("RESOURCE_EXHAUSTED", "CLIENT: Sent message larger than max (519212 vs. 1000)", None),
        ("INVALID_ARGUMENT", "unexpected shape for input 'images' for model 'yolox_nano'. "
         "Expected [-1,416,416,3], got [1,416,400,3]", None),
        ("INTERNAL", "the model raised an error in room 3", None),
    ],
)  # fmt: skip
def test_a_failed_request_to_a_tier_is_the_tiers_fault_or_not(status, text, tier_fault_is):
    assert tier_fault(InferenceServerException(text, f"StatusCode.{status}")) == tier_fault_is


def test_a_broken_channel_is_the_tiers_fault():
    assert tier_fault(ConnectionResetError("reset by peer")) == "unavailable"
