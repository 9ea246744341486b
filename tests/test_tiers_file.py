"""The tiers file (STEADYEYE_INFERENCE_TIERS_FILE) and what inference checks of the tiers at
start: a mistake stops it with the file's line, never a silent default."""

from __future__ import annotations

import pytest

from services.contract import ModelContract
from services.core.errors import ConfigError
from services.inference.tiers import _same_contract
from services.inference.tiers_file import parse_tiers
from steadyeye.v1.detections_pb2 import Detections

TWO_TIERS = """\
tiers:
  - name: primary
    triton_url: triton-gpu:8001
    model: yolox_nano_trt
    budget_ms: 100
  - name: int8
    triton_url: triton-cpu:8001
    model: yolox_nano_int8
    budget_ms: 400
    timeout_ms: 1000
health:
  hold_s: 20
"""


def test_a_valid_file_gives_each_tier_its_budget_and_timeout():
    parsed = parse_tiers(TWO_TIERS)
    primary, fallback = parsed.tiers
    assert (primary.name, primary.budget_s, primary.timeout_s) == ("primary", 0.1, 0.2)
    assert (fallback.model, fallback.timeout_s) == ("yolox_nano_int8", 1.0)
    assert parsed.health.hold_s == 20 and parsed.health.window_s == 5  # the rest: defaults


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (("budget_ms: 100", "budjet_ms: 100"),
         "<tiers>:5: tiers[0].budjet_ms: unknown key 'budjet_ms' (did you mean 'budget_ms'?)"),
        (("hold_s: 20", "hold: 20"),
         "<tiers>:12: health.hold: unknown key 'hold' (did you mean 'hold_s'?)"),
        (("name: int8", "name: primary"),
         "<tiers>:6: tiers[1].name: duplicate name 'primary' (also tiers[0])"),
        (("timeout_ms: 1000", "timeout_ms: 200"),
         "<tiers>:10: tiers[1].timeout_ms: 200 is below budget_ms 400"),
        (("budget_ms: 400", "budget_ms: 0"), "tiers[1].budget_ms: Input should be greater than 0"),
        (("hold_s: 20", "ramp_steps: [0.5, 0.25]"), "ramp_steps [0.5, 0.25] must"),
        (("name: primary", "name: 'two words'"), "tiers[0].name: String should match pattern"),
    ],
)  # fmt: skip
def test_mistakes_are_refused_with_the_line(change, error):
    with pytest.raises(ConfigError) as refused:
        parse_tiers(TWO_TIERS.replace(*change))
    assert error in str(refused.value)


def test_a_file_without_tiers_is_refused():
    with pytest.raises(ConfigError, match="tiers"):
        parse_tiers("tiers: []\n")


CONTRACT = ModelContract("yolox_nano", "images", 416, 416, "top_left", 114, ("person",), 8)


@pytest.mark.parametrize(
    ("fallback", "refused"),
    [
        (ModelContract("yolox_nano_int8", "images", 416, 416, "top_left", 114, ("person",), 4),
         None),  # another name and batch size: the same frames
        (ModelContract("small", "images", 320, 320, "top_left", 114, ("person",), 8),
         "input_width 320 (primary: 416)"),
        (ModelContract("yolov8", "images", 416, 416, "center", 114, ("person",), 8),
         "pad_side 'center' (primary: 'top_left')"),
        (ModelContract("other", "images", 416, 416, "top_left", 114, ("car",), 8),
         "class_names ('car',) (primary: ('person',))"),
    ],
)  # fmt: skip
def test_every_tier_must_take_the_primarys_frames(fallback, refused):
    spec = parse_tiers(TWO_TIERS).tiers
    if refused is None:
        _same_contract(spec[0], CONTRACT, spec[1], fallback)
        return
    with pytest.raises(ConfigError, match="tier 'int8'") as error:
        _same_contract(spec[0], CONTRACT, spec[1], fallback)
    assert refused in str(error.value)


@pytest.mark.stack
def test_without_a_tiers_file_detections_say_nothing_of_tiers(pipeline, camera_id, bus_jpg):
    pipeline.send_frame(camera_id, 0, bus_jpg)
    [found] = pipeline.read_messages(pipeline.topics.detections, Detections, camera_id, 1)
    assert (found.tier, found.degraded, found.degraded_reason) == ("", False, 0)
    assert found.model.name == "yolox_nano"
