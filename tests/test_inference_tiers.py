"""Inference with two tiers on the embedded stack's real Triton, in this process: a primary that
fails as a GPU model does under pressure (tests/data/failing_model: out of memory, a full queue)
and the served model as the fallback. A failed frame is answered once, by the fallback, saying
why; the primary is left with one ServingEvent; probes are never published."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator

import cv2
import numpy as np
import pytest
from opentelemetry.trace import INVALID_SPAN
from prometheus_client import REGISTRY

from services import contract, triton_client
from services.core.handler import Incoming
from services.core.payload_keys import READY
from services.inference.handler import InferenceHandler
from services.inference.settings import InferenceSettings
from services.inference.tiers import Tier
from services.inference.tiers_file import HealthRules
from services.preprocess.letterbox import letterbox
from steadyeye.embedded.stack import Stack
from steadyeye.v1.common_pb2 import FrameRef
from steadyeye.v1.detections_pb2 import DegradedReason, Detections
from steadyeye.v1.frames_pb2 import ReadyFrame
from steadyeye.v1.serving_pb2 import ServingEvent, ServingStep
from tests.conftest import DATA, wait_for

pytestmark = pytest.mark.stack
# Long enough that nothing returns to the primary while a test looks.
RULES = HealthRules(hold_s=60, probe_every_s=0.2)


def failing_model(stack: Stack, failure: str) -> str:
    """The served model's contract, answered by tests/data/failing_model; loaded into the
    stack's Triton (explicit model control) and unloaded by the caller."""
    name = f"failing_{failure}"
    repository = stack.workdir / "model_repository"
    config = (repository / stack.model.name / "config.pbtxt").read_text()
    config = config.replace(f'name: "{stack.model.name}"', f'name: "{name}"')
    config += (
        f'parameters {{\n  key: "failure"\n  value {{\n    string_value: "{failure}"\n  }}\n}}\n'
    )
    if failure == "slow":  # one at a time, a queue of one: the rest are rejected at once
        config = re.sub(r"max_batch_size: \d+", "max_batch_size: 1", config)
        config = re.sub(r"\s*preferred_batch_size: \d+", "", config)
        config = re.sub(r"max_queue_size: \d+", "max_queue_size: 1", config)
        config = re.sub(r"count: \d+", "count: 1", config)
    folder = repository / name
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "1").mkdir(parents=True)
    (folder / "config.pbtxt").write_text(config)
    shutil.copy(DATA / "failing_model" / "model.py", folder / "1" / "model.py")
    return name


@pytest.fixture
def handler_for(stack: Stack, pipeline) -> Iterator:
    made: list[tuple[InferenceHandler, str]] = []

    def make(failure: str, timeout_s: float = 5.0) -> InferenceHandler:
        name = failing_model(stack, failure)
        client = triton_client.connect(stack.triton_grpc)
        client.load_model(name)
        model = contract.fetch(client, stack.model.name, 60)
        fallback = triton_client.connect(stack.triton_grpc)
        tiers = [
            Tier("primary", name, client, timeout_s=timeout_s, budget_s=timeout_s / 2),
            Tier("fallback", stack.model.name, fallback, timeout_s=10.0, budget_s=5.0),
        ]
        settings = InferenceSettings(triton_url=stack.triton_grpc, model_name=model.name,
                                     max_in_flight=8)  # fmt: skip
        handler = InferenceHandler(tiers, model, pipeline.payloads, "detections", settings,
                                   rules=RULES, serving_topic="serving")  # fmt: skip
        made.append((handler, name))
        return handler

    yield make
    for handler, name in made:
        handler.close()
        admin = triton_client.connect(stack.triton_grpc)
        admin.unload_model(name)
        admin.close()


def frames(stack: Stack, pipeline, bus_jpg: bytes, cameras: int, test: str) -> list[Incoming]:
    """Letterboxed bus.jpg for `cameras` cameras, tensors in the claim-check store."""
    client = triton_client.connect(stack.triton_grpc)
    model = contract.fetch(client, stack.model.name, 60)
    client.close()
    image = cv2.imdecode(np.frombuffer(bus_jpg, np.uint8), cv2.IMREAD_COLOR)
    boxed = letterbox(image, model)
    found = []
    for k in range(cameras):
        camera = f"{test}-{k}"
        found.append(Incoming(ReadyFrame(
            ref=FrameRef(camera_id=camera, frame_id=0, width=image.shape[1],
                         height=image.shape[0]),
            model_name=model.name,
            tensor=pipeline.payloads.put(READY.key(camera, 0), boxed.image.tobytes()),
            input_width=model.input_width, input_height=model.input_height,
            scale=boxed.scale, pad_x=boxed.pad_x, pad_y=boxed.pad_y,
        ), INVALID_SPAN))  # fmt: skip
    return found


def answers(results: list) -> list[Detections]:
    """Each frame's one output, on the detections topic (no frame failed)."""
    assert not [r for r in results if isinstance(r, Exception)], results
    assert all(len(outputs) == 1 for outputs in results)
    assert {outputs[0].topic for outputs in results} == {"detections"}
    return [outputs[0].message for outputs in results]


def test_an_out_of_memory_primary_is_left_at_once_and_its_frames_answered_by_the_fallback(
    stack, pipeline, handler_for, bus_jpg
):
    handler = handler_for("oom")
    first = answers(handler.handle_batch(frames(stack, pipeline, bus_jpg, 4, "oom")))

    for message in first:  # answered, not dead-lettered (as one tier would have, before)
        assert (message.tier, message.degraded) == ("fallback", True)
        assert message.degraded_reason == DegradedReason.DEGRADED_REASON_OUT_OF_MEMORY
        assert message.model.name == stack.model.name
        assert "person" in {d.class_name for d in message.detections}
    [event] = [o.message for o in handler.tick() if isinstance(o.message, ServingEvent)]
    assert (event.step, event.from_tier, event.to_tier, event.reason) == (
        ServingStep.SERVING_STEP_DEGRADED, "primary", "fallback",
        DegradedReason.DEGRADED_REASON_OUT_OF_MEMORY,
    )  # fmt: skip
    assert "out of memory" in event.detail and event.primary_share == 0.0

    # Later frames go to the fallback without trying the primary, and still say why.
    again = answers(handler.handle_batch(frames(stack, pipeline, bus_jpg, 2, "oom-later")))
    assert {(m.tier, m.degraded_reason) for m in again} == {
        ("fallback", DegradedReason.DEGRADED_REASON_OUT_OF_MEMORY)
    }


def test_probes_go_to_the_left_tier_and_are_never_published(stack, pipeline, handler_for, bus_jpg):
    handler = handler_for("oom")
    before = probes_failed()
    answers(handler.handle_batch(frames(stack, pipeline, bus_jpg, 1, "probe")))
    outputs = []

    def probed() -> bool:
        outputs.extend(handler.tick())  # a left tier is probed on the tick when idle
        return probes_failed() >= before + 2

    assert wait_for(probed, 15, every_s=0.25)
    assert {o.topic for o in outputs} == {"serving"}  # the DEGRADED event, no probe's answer
    assert all(isinstance(o.message, ServingEvent) for o in outputs)


def probes_failed() -> float:
    labels = {"tier": "primary", "outcome": "failed"}
    return REGISTRY.get_sample_value("steadyeye_inference_tier_probes_total", labels) or 0.0


def test_a_full_primary_queue_sends_the_rejected_frames_to_the_fallback(
    stack, pipeline, handler_for, bus_jpg
):
    handler = handler_for("slow", timeout_s=0.5)
    found = answers(handler.handle_batch(frames(stack, pipeline, bus_jpg, 8, "queue")))

    assert {(m.tier, m.degraded) for m in found} == {("fallback", True)}
    reasons = {m.degraded_reason for m in found}
    # Rejected at once for a full queue; the one Triton ran timed out (latency).
    assert DegradedReason.DEGRADED_REASON_QUEUE_FULL in reasons
    events = [o.message for o in handler.tick() if isinstance(o.message, ServingEvent)]
    assert [(e.step, e.reason) for e in events] == [
        (ServingStep.SERVING_STEP_DEGRADED, DegradedReason.DEGRADED_REASON_QUEUE_FULL)
    ]
