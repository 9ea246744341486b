"""The capture service's strategies file and what each strategy takes: pure logic, no servers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from services.capture.churn import MAX_TRACKS_PER_CAMERA, TrackMemory
from services.capture.loader import (
    StrategyFileError,
    check_classes,
    load_strategies,
    parse_strategies,
)
from services.capture.strategies import (
    ChurnFacts,
    Ended,
    Episode,
    FrameFacts,
    Limits,
    Seen,
    Switch,
    Window,
)
from steadyeye.v1.common_pb2 import FrameRef
from steadyeye.v1.tracks_pb2 import Track, Tracks, TrackState

EXAMPLE = Path(__file__).parent.parent / "examples" / "capture-strategies.yaml"
COCO = ("person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat")
COCO += ("traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat")
COCO += ("dog",)
LIMITS = "defaults: {limits: {camera: {minute: 5}}}\n"


def strategy(text: str):
    """One strategy from its YAML mapping (with default limits)."""
    return parse_strategies(LIMITS + f"strategies:\n  - {text}\n").strategies[0]


# ---- the file ----------------------------------------------------------------------------------


def test_the_example_file_loads_and_names_only_classes_of_the_demo_model():
    strategies = load_strategies(EXAMPLE)
    assert [s.type for s in strategies.strategies] == [
        "drift", "uncertain", "count", "classes", "track_churn", "random"
    ]  # fmt: skip
    check_classes(strategies, COCO)
    assert strategies.privacy["demo"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            LIMITS + "strategies:\n  - name: r\n    type: random\n    precent: 1\n",
            ":5: strategies[0].precent: unknown key 'precent' (did you mean 'percent'?)",
            id="misspelled-key",
        ),
        pytest.param(
            LIMITS + "strategies:\n  - {name: r, type: randum, percent: 1}\n",
            ":3: strategies[0].type: unknown strategy type 'randum'; expected one of random, "
            "uncertain, count, classes, drift, track_churn",
            id="unknown-type",
        ),
        pytest.param(
            LIMITS + "strategies:\n  - name: d\n    type: disagreement\n",
            ":4: strategies[0].type: type 'disagreement' is not available: it needs a candidate "
            "model's shadow detections beside the serving model's",
            id="disagreement-not-yet",
        ),
        pytest.param(
            LIMITS + "strategies:\n  - {name: r, percent: 1}\n",
            ":3: strategies[0]: a strategy needs a type, one of random,",
            id="no-type",
        ),
        pytest.param(
            LIMITS + "strategies:\n  - {type: random, percent: 1}\n",
            ":3: strategies[0]: missing required key 'name'",
            id="no-name",
        ),
        pytest.param(
            LIMITS + "strategies:\n  - {name: a, type: random, percent: 1}\n"
            "  - {name: a, type: random, percent: 2}\n",
            ":4: strategies[1].name: duplicate name 'a' (also strategies[0])",
            id="duplicate-name",
        ),
        pytest.param(
            "strategies:\n  - {name: a, type: random, percent: 1}\n",
            ":2: strategies[0]: no limits: set its limits or defaults.limits",
            id="unbounded",
        ),
        pytest.param(
            "defaults: {limits: {camera: {minutes: 5}}}\n"
            "strategies:\n  - {name: a, type: random, percent: 1}\n",
            ":1: defaults.limits.camera.minutes: unknown key 'minutes' (did you mean 'minute'?)",
            id="misspelled-window",
        ),
        pytest.param(
            "defaults: {limit: {camera: {minute: 5}}}\n"
            "strategies:\n  - {name: a, type: random, percent: 1}\n",
            ":1: defaults.limit: unknown key 'limit' (did you mean 'limits'?)",
            id="misspelled-defaults",
        ),
        pytest.param(
            LIMITS + "strategies:\n  - {name: u, type: uncertain, band: [0.4, 0.2]}\n",
            ":3: strategies[0]: band [0.4, 0.2]: low must be below high",
            id="band-reversed",
        ),
        pytest.param(
            LIMITS + "strategies:\n  - {name: c, type: count, above: 3, below: 1}\n",
            ":3: strategies[0]: set exactly one of above and below",
            id="count-both",
        ),
        pytest.param(
            LIMITS + "strategies:\n  - {name: t, type: track_churn}\n",
            "set at least one of max_track_frames, starts_above, switch_iou",
            id="churn-nothing",
        ),
        pytest.param(
            LIMITS + "strategies:\n  - {name: k, type: classes, classes: []}\n",
            "an empty list of classes matches nothing",
            id="classes-empty",
        ),
        pytest.param(
            LIMITS + "strategies:\n  - {name: a, type: random, percent: 1}\n"
            "privacy:\n  cam-1:\n    - [0.1, 0.1, 0.5, 0.5]\n    - [0.6, 0.2, 0.3, 0.9]\n",
            ":7: privacy.cam-1[1]: [x1, y1, x2, y2] with x1 < x2",
            id="privacy-rectangle",
        ),
        pytest.param(
            LIMITS + "strategies:\n  - {name: a, type: random, percent: 1}\n"
            "privacy:\n  cam-1: [[0, 0, 1.5, 0.5]]\n",
            ":5: privacy.cam-1[0][2]: Input should be less than or equal to 1",
            id="privacy-fraction",
        ),
        pytest.param(
            LIMITS + "strategies:\n  - {name: a, type: random, percent: 1}\n"
            "privacy:\n  ../etc: [[0, 0, 0.5, 0.5]]\n",
            ":5: privacy.../etc: '../etc' is not a camera id: letters, digits and",
            id="privacy-camera-id",
        ),
        pytest.param(
            LIMITS + "strategies:\n  - name: a\n    name: b\n    type: random\n    percent: 1\n",
            ":4: duplicate key 'name' (first on line 3)",
            id="duplicate-key",
        ),
        pytest.param(LIMITS + "strategies: [\n", "invalid YAML", id="bad-yaml"),
        pytest.param("", ":1: expected a mapping with 'strategies'", id="empty"),
        pytest.param(
            LIMITS + "strategies:\n  - {name: yes, type: random, percent: 1}\n",
            "(YAML reads unquoted yes/no/on/off as true/false: quote it)",
            id="yaml-bool",
        ),
    ],
)
def test_a_bad_file_is_refused_with_its_line_and_the_valid_choices(text, expected):
    with pytest.raises(StrategyFileError) as error:
        parse_strategies(text, "s.yaml")
    assert expected in str(error.value), str(error.value)
    assert str(error.value).startswith("s.yaml:")


def test_an_alias_bomb_is_refused_quickly():
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
        for p, c in zip("abcdefgh", "bcdefghi", strict=True)
    )
    with pytest.raises(StrategyFileError, match="unknown key 'a'"):
        parse_strategies(bomb + LIMITS + "strategies: [{name: r, type: random, percent: 1}]\n")


def test_a_class_the_model_does_not_have_is_refused_with_a_suggestion():
    strategies = parse_strategies(
        LIMITS + "strategies:\n  - {name: k, type: classes, classes: [prson, dog]}\n"
    )
    with pytest.raises(StrategyFileError, match="the model has no class 'prson' \\(did you mean"):
        check_classes(strategies, COCO)


def test_a_strategys_limits_replace_the_defaults_scope_by_scope():
    parsed = parse_strategies(
        "defaults: {limits: {camera: {minute: 5}, overall: {hour: 100}}}\n"
        "strategies:\n  - {name: a, type: random, percent: 1, limits: {camera: {day: 7}}}\n"
        "  - {name: b, type: random, percent: 1}\n"
    )
    a, b = parsed.strategies
    assert parsed.limits_of(a) == Limits(camera=Window(day=7), overall=Window(hour=100))
    assert parsed.limits_of(b) == parsed.defaults.limits


def test_a_bad_strategies_file_stops_the_service_at_start(tmp_path):
    bad = tmp_path / "strategies.yaml"
    bad.write_text(LIMITS + "strategies:\n  - name: r\n    type: random\n    precent: 1\n")
    env = {
        **os.environ,
        "STEADYEYE_CAPTURE_STRATEGIES_FILE": str(bad),
        "STEADYEYE_CAPTURE_DATASET_URL": str(tmp_path / "dataset"),
        "STEADYEYE_CAPTURE_HTTP_PORT": "0",
        "STEADYEYE_CAPTURE_HTTP_HOST": "127.0.0.1",
        "OTEL_TRACES_EXPORTER": "none",
    }
    result = subprocess.run(
        [sys.executable, "-m", "services.capture"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert f"{bad}:5: strategies[0].precent: unknown key 'precent'" in result.stderr


# ---- what each type takes ----------------------------------------------------------------------


def facts(served=(), candidates=(), frame_id=7, episode=None) -> FrameFacts:
    return FrameFacts(
        "cam-1",
        frame_id,
        tuple(Seen(c, s) for c, s in served),
        tuple(Seen(c, s) for c, s in candidates),
        episode,
    )


EPISODE = Episode("ep-1", start_frame=100)


@pytest.mark.parametrize(
    ("definition", "frame", "expected"),
    [
        # uncertain: a box of the band, served or a candidate below the serving threshold
        ("{name: u, type: uncertain, band: [0.15, 0.35]}",
         facts(served=[("person", 0.9)]), None),
        ("{name: u, type: uncertain, band: [0.15, 0.35]}",
         facts(served=[("person", 0.3)]),
         {"band": "[0.15, 0.35)", "served_in_band": "1", "candidates_in_band": "0"}),
        ("{name: u, type: uncertain, band: [0.15, 0.35]}",  # what the threshold alone misses
         facts(served=[("person", 0.9)], candidates=[("dog", 0.2)]),
         {"band": "[0.15, 0.35)", "served_in_band": "0", "candidates_in_band": "1"}),
        ("{name: u, type: uncertain, band: [0.15, 0.35]}",  # high end excluded
         facts(served=[("person", 0.35)], candidates=[("dog", 0.12)]), None),
        ("{name: u, type: uncertain, classes: [person]}",
         facts(candidates=[("dog", 0.2)]), None),
        ("{name: u, type: uncertain, min_boxes: 2}",
         facts(served=[("car", 0.3)], candidates=[("dog", 0.2)]),
         {"band": "[0.15, 0.35)", "served_in_band": "1", "candidates_in_band": "1"}),
        ("{name: u, type: uncertain, min_boxes: 2}", facts(candidates=[("dog", 0.2)]), None),
        ("{name: u, type: uncertain}", facts(candidates=[("dog", float("nan"))]), None),
        # count: served detections only
        ("{name: c, type: count, above: 2}",
         facts(served=[("person", 0.9)] * 3), {"count": "3", "above": "2"}),
        ("{name: c, type: count, above: 2}",
         facts(served=[("person", 0.9)] * 2, candidates=[("person", 0.2)] * 5), None),
        ("{name: c, type: count, above: 2, classes: [car]}",
         facts(served=[("person", 0.9)] * 3), None),
        ("{name: c, type: count, below: 1}", facts(), {"count": "0", "below": "1"}),
        ("{name: c, type: count, below: 2, min_score: 0.5}",
         facts(served=[("car", 0.4), ("car", 0.6)]), {"count": "1", "below": "2"}),
        # classes
        ("{name: k, type: classes, classes: [dog, bicycle]}",
         facts(served=[("person", 0.9), ("dog", 0.3), ("bicycle", 0.5)]),
         {"classes": "bicycle,dog"}),
        ("{name: k, type: classes, classes: [dog]}", facts(candidates=[("dog", 0.2)]), None),
        ("{name: k, type: classes, classes: [dog], min_score: 0.5}",
         facts(served=[("dog", 0.4)]), None),
        # drift: the episode's first frame and every `every`-th, `max_frames` of them
        ("{name: d, type: drift, every: 5, max_frames: 3}", facts(frame_id=100), None),
        ("{name: d, type: drift, every: 5, max_frames: 3}",
         facts(frame_id=100, episode=EPISODE), {"episode_frame": "0"}),
        ("{name: d, type: drift, every: 5, max_frames: 3}",
         facts(frame_id=110, episode=EPISODE), {"episode_frame": "10"}),
        ("{name: d, type: drift, every: 5, max_frames: 3}",
         facts(frame_id=111, episode=EPISODE), None),
        ("{name: d, type: drift, every: 5, max_frames: 3}",
         facts(frame_id=115, episode=EPISODE), None),
        ("{name: d, type: drift, every: 5, max_frames: 3}",
         facts(frame_id=95, episode=EPISODE), None),
        # track_churn is decided from tracks, never from detections
        ("{name: t, type: track_churn, starts_above: 0}", facts(served=[("person", 0.9)]), None),
    ],
)  # fmt: skip
def test_what_each_strategy_takes_from_a_frame(definition, frame, expected):
    assert strategy(definition).match(frame) == expected


def test_random_takes_its_share_and_decides_the_same_for_the_same_frame():
    sample = strategy("{name: r, type: random, percent: 5}")
    taken = [sample.match(facts(frame_id=i)) is not None for i in range(20_000)]
    assert 0.04 < sum(taken) / len(taken) < 0.06
    assert taken == [sample.match(facts(frame_id=i)) is not None for i in range(20_000)]
    other = strategy("{name: other, type: random, percent: 5}")  # an independent draw
    assert taken != [other.match(facts(frame_id=i)) is not None for i in range(20_000)]


CHURN = ChurnFacts(
    "cam-1",
    50,
    started=3,
    ended=(Ended(4, first=10, last=12), Ended(5, first=10, last=40)),
    switches=(Switch(new_id=9, old_id=6, iou=0.7, gap=3),),
)


@pytest.mark.parametrize(
    ("definition", "expected"),
    [
        ("{name: t, type: track_churn, max_track_frames: 5}",
         {12: {"short_track": "4", "lived_frames": "3"}}),
        ("{name: t, type: track_churn, max_track_frames: 3}", {}),
        ("{name: t, type: track_churn, starts_above: 2}", {50: {"track_starts": "3"}}),
        ("{name: t, type: track_churn, starts_above: 3}", {}),
        ("{name: t, type: track_churn, switch_iou: 0.5}",
         {50: {"id_switch": "6->9", "iou": "0.70"}}),
        ("{name: t, type: track_churn, switch_iou: 0.8}", {}),
        ("{name: t, type: track_churn, switch_iou: 0.5, switch_within_frames: 2}", {}),
        ("{name: t, type: track_churn, max_track_frames: 5, starts_above: 0}",
         {12: {"short_track": "4", "lived_frames": "3"}, 50: {"track_starts": "3"}}),
    ],
)  # fmt: skip
def test_what_track_churn_takes(definition, expected):
    assert strategy(definition).match_churn(CHURN) == expected


# ---- track memory ------------------------------------------------------------------------------


def tracks(frame_id: int, *items: tuple[int, int, tuple[float, float, float, float]]) -> Tracks:
    message = Tracks(ref=FrameRef(camera_id="cam-1", frame_id=frame_id))
    for track_id, state, box in items:
        track = Track(track_id=track_id, state=state)
        if state == COASTED:  # a prediction: no detection
            target = track.box
        else:
            track.detection.class_name, track.detection.score = "person", 0.9
            target = track.detection.box
        target.x1, target.y1, target.x2, target.y2 = box
        message.tracks.append(track)
    return message


STARTED, UPDATED, ENDED, COASTED = (
    TrackState.TRACK_STATE_STARTED,
    TrackState.TRACK_STATE_UPDATED,
    TrackState.TRACK_STATE_ENDED,
    TrackState.TRACK_STATE_COASTED,
)
BOX = (10.0, 10.0, 50.0, 90.0)


def test_a_tracks_life_is_counted_from_its_confirmation_to_its_last_match():
    memory = TrackMemory()
    memory.observe(tracks(10, (1, STARTED, BOX), (2, STARTED, BOX)))
    memory.observe(tracks(11, (1, UPDATED, BOX), (2, UPDATED, BOX)))
    memory.observe(tracks(12, (2, UPDATED, BOX)))
    churn = memory.observe(tracks(43, (1, ENDED, (0, 0, 0, 0))))
    assert churn == ChurnFacts("cam-1", 43, 0, (Ended(1, 10, 11),), ())
    assert memory.observe(tracks(43, (2, ENDED, (0, 0, 0, 0)))) is None  # a replayed frame


def test_a_track_whose_confirmation_was_not_seen_never_counts_as_short_lived():
    memory = TrackMemory()  # e.g. a restarted capture, meeting running tracks half way
    memory.observe(tracks(20, (1, UPDATED, BOX)))
    assert memory.observe(tracks(52, (1, ENDED, BOX))).ended == ()


def test_a_track_starting_where_another_was_just_lost_is_an_id_switch():
    memory = TrackMemory(switch_lookback=10)
    memory.observe(tracks(10, (1, STARTED, BOX), (2, STARTED, (200, 10, 240, 90))))
    memory.observe(tracks(11, (2, UPDATED, (200, 10, 240, 90))))  # 1 lost from here
    churn = memory.observe(
        tracks(14, (2, UPDATED, (200, 10, 240, 90)), (3, STARTED, (12, 10, 52, 90)))
    )
    assert churn is not None and churn.started == 1
    [switch] = churn.switches
    assert (switch.old_id, switch.new_id, switch.gap) == (1, 3, 4)
    assert switch.iou == pytest.approx(38 * 80 / (2 * 40 * 80 - 38 * 80))
    late = TrackMemory(switch_lookback=2)
    late.observe(tracks(10, (1, STARTED, BOX)))
    assert late.observe(tracks(14, (3, STARTED, BOX))).switches == ()


def test_a_coasted_track_is_lost_to_churn_and_its_life_ends_at_its_last_match():
    memory = TrackMemory(switch_lookback=10)
    memory.observe(tracks(10, (1, STARTED, BOX)))
    memory.observe(tracks(11, (1, COASTED, (14, 10, 54, 90))))
    churn = memory.observe(tracks(12, (1, COASTED, (18, 10, 58, 90)), (2, STARTED, BOX)))
    [switch] = churn.switches  # the new track took over where the coasting one was last seen
    assert (switch.old_id, switch.new_id, switch.gap) == (1, 2, 2)
    assert memory.observe(tracks(42, (1, ENDED, (0, 0, 0, 0)))).ended == (Ended(1, 10, 10),)


def test_a_flood_of_tracks_cannot_grow_memory_without_bound():
    memory = TrackMemory()
    flood = tracks(1, *((i, STARTED, BOX) for i in range(3 * MAX_TRACKS_PER_CAMERA)))
    assert memory.observe(flood).started == 3 * MAX_TRACKS_PER_CAMERA
    assert len(memory._cameras["cam-1"].tracks) == MAX_TRACKS_PER_CAMERA
