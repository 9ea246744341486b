"""A record reaches only what it owns: a claim-check key naming anything but the record's own
camera's and frame's payload is dead-lettered with the reason, and nothing it names is read or
deleted. Against the running stack: real broker, Triton, Redis and the services' store."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import tritonclient.grpc as triton

from services.contract import fetch
from services.core.messages import schema_headers
from services.core.payload_keys import READY, frame_key
from steadyeye.v1.common_pb2 import ClaimCheck, FrameRef, Payload
from steadyeye.v1.detections_pb2 import Detections
from steadyeye.v1.frames_pb2 import Frame, ImageEncoding, ReadyFrame

pytestmark = pytest.mark.stack

# Keys a hostile record might name, for a victim id v: each exists (in Redis and in the
# services' claim-check store) while the record is handled, and must be untouched afterwards.
TARGETS: dict[str, Callable[[str], str]] = {
    "tracker state": lambda v: f"steadyeye:state:tracker:{v}",
    "an alert dedup record": lambda v: f"steadyeye:alert:sent:{v}",
    "another camera's frame": lambda v: frame_key(v, 0),
    "another camera's tensor": lambda v: READY.key(v, 0),
    "a key outside steadyeye:": lambda v: f"session:{v}",
    "a path out of the store": lambda v: f"../{v}",
}


@pytest.fixture
def model_shape(stack) -> tuple[int, int]:
    client = triton.InferenceServerClient(stack.triton_grpc)
    try:
        contract = fetch(client, stack.model.name, wait_s=30)
    finally:
        client.close()
    return contract.input_width, contract.input_height


def plant(pipeline, key: str, value: bytes, shm_dir: Path | None) -> list[Path]:
    """The target exists wherever a careless reader could look for it; returns the files a
    naive path join of the key would reach."""
    pipeline.redis.set(key, value, ex=300)
    pipeline.payloads.put(key, value)
    if shm_dir is None:
        return []
    naive = [shm_dir / key, shm_dir / f"{key}.payload"]
    for path in naive:
        if path.parent.resolve() != shm_dir.resolve():  # outside: a file the store never owns
            path.write_bytes(value)
    return [p for p in naive if p.exists()]


def claim(key: str, size: int) -> Payload:
    return Payload(claim_check=ClaimCheck(key=key, size_bytes=size))


def test_records_naming_keys_they_do_not_own_are_dead_lettered_and_touch_nothing(
    stack, pipeline, camera_id, bus_jpg, model_shape
):
    width, height = model_shape
    tensor_bytes = width * height * 3
    value = b"\x07" * tensor_bytes  # the right size: only the key is wrong
    planted: dict[str, tuple[str, list[Path]]] = {}
    for name, target in TARGETS.items():
        key = target(f"victim-{uuid.uuid4().hex[:8]}")
        planted[name] = (key, plant(pipeline, key, value, stack.shm_dir))

    try:
        ref = FrameRef(camera_id=camera_id, frame_id=0)
        ref.capture_time.GetCurrentTime()
        for key, _ in planted.values():  # inference would read the tensor, then delete it
            ready = ReadyFrame(
                ref=ref, tensor=claim(key, tensor_bytes), input_width=width, input_height=height,
                scale=1,
            )  # fmt: skip
            pipeline.send_raw(ready.SerializeToString(), schema_headers(ready), camera_id,
                              pipeline.topics.ready)  # fmt: skip
        frame_targets = ["tracker state", "another camera's frame"]
        for name in frame_targets:  # preprocess would read it as the frame's pixels
            frame = Frame(ref=ref, encoding=ImageEncoding.IMAGE_ENCODING_BGR24,
                          image=claim(planted[name][0], tensor_bytes))  # fmt: skip
            pipeline.send_raw(frame.SerializeToString(), schema_headers(frame), camera_id)

        # Two good frames after them, one at a time: the second is handled in a later poll than
        # every hostile record, so inference's clean-up after their commit has run by then.
        for frame_id in (1, 2):
            pipeline.send_frame(camera_id, frame_id, bus_jpg)
            found = pipeline.read_messages(
                pipeline.topics.detections, Detections, camera_id, frame_id
            )
            assert [d.ref.frame_id for d in found] == list(range(1, frame_id + 1))

        reasons = pipeline.dead_letters(camera_id, len(TARGETS) + len(frame_targets))
        for name, (key, _) in planted.items():
            expected = [f"claim-check key {key!r} is not one of the ready payloads of camera"]
            if name in frame_targets:
                expected.append(
                    f"claim-check key {key!r} is not one of the frame payloads of camera"
                )
            for text in expected:
                assert sum(text in r for r in reasons) == 1, (name, text, reasons)
        for name, (key, files) in planted.items():
            assert pipeline.redis.get(key) == value, f"{name}: Redis key {key} changed"
            assert bytes(pipeline.payloads.find(key)) == value, f"{name}: stored {key} changed"
            for path in files:
                assert path.read_bytes() == value, f"{name}: {path} changed"
    finally:
        for _, files in planted.values():
            for path in files:
                if stack.shm_dir is None or path.parent.resolve() != stack.shm_dir.resolve():
                    path.unlink(missing_ok=True)
