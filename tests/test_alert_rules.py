"""The alert rules engine: each rule fires exactly when specified, never on flicker, and the
same input always gives the same alerts (ids included), also across a snapshot and restore."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import pytest

from services.alert.rules import (
    AlertEngine,
    DriftObservation,
    FrameObservation,
    RuleFileError,
    RuleSet,
    SignalObs,
    TrackObs,
    alert_id,
    load_rules,
)

CAM = "cam-1"
FPS = 10
DEMO_RULES = Path(__file__).resolve().parents[1] / "examples" / "demo-rules.yaml"
SQUARE = [[0, 0], [100, 0], [100, 100], [0, 100]]


def engine_for(*rules: dict[str, Any], cooldown_s: float = 60.0) -> AlertEngine:
    ruleset = RuleSet.model_validate(
        {"defaults": {"cooldown_s": cooldown_s}, "cameras": {CAM: {"rules": list(rules)}}}
    )
    return AlertEngine(ruleset)


def track(tid: int, feet: tuple[float, float], cls: str = "person") -> TrackObs:
    """A 20x40 box standing on `feet`."""
    x, y = feet
    return TrackObs(tid, cls, (x - 10.0, y - 40.0, x + 10.0, y), 0.9)


def frame(
    i: int, tracks: list[TrackObs] | tuple[TrackObs, ...] = (), **quality: float
) -> FrameObservation:
    return FrameObservation(CAM, i, 1000.0 + i / FPS, tuple(tracks), **quality)


def fired_frames(engine: AlertEngine, frames: list[FrameObservation]) -> list[int]:
    return [f.frame_id for obs in frames for f in engine.observe(obs)]


# --- zone_intrusion ------------------------------------------------------------------------
# One character per frame at 10 fps: I feet inside the zone, o outside, - track not in frame.
ZONE = {"id": "lawn", "type": "zone_intrusion", "polygon": SQUARE, "min_dwell_s": 1.0}


def zone_frames(timeline: str, cls: str = "person") -> list[FrameObservation]:
    where = {"I": (50.0, 50.0), "o": (150.0, 50.0)}
    return [frame(i, [] if c == "-" else [track(7, where[c], cls)]) for i, c in enumerate(timeline)]


@pytest.mark.parametrize(
    ("timeline", "expected"),
    [
        pytest.param("I" * 15, [10], id="fires-after-dwell"),
        pytest.param("I" * 60, [10], id="once-per-visit"),
        pytest.param("I" * 9 + "o" * 10, [], id="dwell-too-short"),
        pytest.param("IIIII" + "o" + "I" * 9, [10], id="one-frame-out-keeps-dwell"),
        pytest.param("IIIII" + "--" + "I" * 8, [10], id="two-frames-unseen-keep-dwell"),
        pytest.param("IIIoIIIIo" + "I" * 10, [10], id="separate-blips-keep-dwell"),
        pytest.param("IIIII" + "oooooo" + "I" * 15, [21], id="out-past-grace-restarts-dwell"),
        pytest.param("o" * 20, [], id="never-inside"),
    ],
)
def test_zone_intrusion(timeline: str, expected: list[int]) -> None:
    assert fired_frames(engine_for(ZONE), zone_frames(timeline)) == expected


@pytest.mark.parametrize(
    ("cooldown_s", "expected"),
    [
        pytest.param(0.0, [10, 31], id="new-visit-fires-again"),
        pytest.param(60, [10], id="cooldown"),
    ],
)
def test_zone_second_visit(cooldown_s: float, expected: list[int]) -> None:
    timeline = "I" * 15 + "o" * 6 + "I" * 15
    assert fired_frames(engine_for(ZONE, cooldown_s=cooldown_s), zone_frames(timeline)) == expected


def test_zone_firing_fields_and_class_filter() -> None:
    rule = {**ZONE, "classes": ["person"], "severity": "critical"}
    assert fired_frames(engine_for(rule), zone_frames("I" * 15, cls="car")) == []
    engine = engine_for(rule)
    (firing,) = [f for obs in zone_frames("o" + "I" * 15) for f in engine.observe(obs)]
    assert (firing.rule_id, firing.rule_type, firing.severity) == (
        "lawn",
        "zone_intrusion",
        "critical",
    )
    assert (firing.camera_id, firing.track_ids, firing.frame_id) == (CAM, (7,), 11)
    assert (firing.first_seen, firing.last_seen) == (1000.1, 1000.0 + 11 / FPS)
    assert firing.counts is None and "lawn" in firing.message
    # The id names the episode (track 7's visit that began in frame 1), not the firing frame.
    assert firing.alert_id == alert_id(CAM, "lawn", "track", 7, 1)


# --- line_crossing -------------------------------------------------------------------------
# A vertical line x=100 from y=0 down to y=200. Walking start->end (down the image) your right
# is the image's left, so moving left-to-right (x grows) is "out", right-to-left is "in".
LINE = {"id": "gate", "type": "line_crossing", "start": [100, 0], "end": [100, 200]}


def walk(
    xs: list[float], y: float = 100.0, tid: int = 3, cls: str = "person"
) -> list[FrameObservation]:
    return [frame(i, [track(tid, (x, y), cls)]) for i, x in enumerate(xs)]


@pytest.mark.parametrize(
    ("xs", "y", "expected"),
    [
        pytest.param([80, 90, 98, 104, 110, 120], 100, [(4, "out")], id="crosses-once"),
        pytest.param([120, 110, 104, 96, 90, 80], 100, [(4, "in")], id="crosses-back-once"),
        pytest.param([90, 110, 110, 90, 90], 100, [(2, "out"), (4, "in")], id="there-and-back"),
        pytest.param([90, 110] + [110] * 30, 100, [(2, "out")], id="one-firing-per-crossing"),
        pytest.param([95, 101.5, 98.5, 101, 99, 101.5, 98], 100, [], id="jitter-in-dead-band"),
        pytest.param([95, 101, 101.5, 101, 101.5], 100, [], id="stands-on-the-line"),
        pytest.param([90, 105, 95, 105, 95, 105, 95], 100, [], id="one-frame-flips-never-count"),
        pytest.param([90, 100, 100, 110, 110], 100, [(4, "out")], id="pauses-on-the-line"),
        pytest.param([90, 110, 110, 110], 300, [], id="passes-beside-the-segment"),
        pytest.param([90, 110, 110, 110], -50, [], id="passes-beyond-the-start"),
    ],
)
def test_line_crossing(xs: list[float], y: float, expected: list[tuple[int, str]]) -> None:
    engine = engine_for(LINE)
    got = [
        (f.frame_id, re.search(r"crossed '\S+' (in|out)", f.message)[1])  # type: ignore[index]
        for obs in walk(xs, y)
        for f in engine.observe(obs)
    ]
    assert got == expected


@pytest.mark.parametrize(
    ("direction", "expected", "last_counts"),
    [
        ("both", [2, 4, 6], {"in": 1, "out": 2}),
        ("in", [4], {"in": 1, "out": 1}),  # the "out" crossing before it was counted
        ("out", [2, 6], {"in": 1, "out": 2}),
    ],
)
def test_line_direction_filter_keeps_counting(
    direction: str, expected: list[int], last_counts: dict[str, int]
) -> None:
    engine = engine_for({**LINE, "direction": direction})
    firings = [f for obs in walk([90, 110, 110, 90, 90, 110, 110]) for f in engine.observe(obs)]
    assert [f.frame_id for f in firings] == expected
    assert firings[-1].counts == {"person": last_counts}


def test_line_counts_per_class_and_class_filter() -> None:
    engine = engine_for({**LINE, "classes": ["person", "car"]})
    frames = [
        frame(i, [track(1, (x, 100)), track(2, (x, 150), "car"), track(3, (x, 120), "dog")])
        for i, x in enumerate([90, 110, 110])
    ]
    firings = [f for obs in frames for f in engine.observe(obs)]
    assert [f.track_ids for f in firings] == [(1,), (2,)]
    assert firings[-1].counts == {"car": {"in": 0, "out": 1}, "person": {"in": 0, "out": 1}}
    assert firings[0].first_seen == frames[1].capture_time  # first seen on the new side


# --- occupancy -----------------------------------------------------------------------------
CROWD = {"id": "crowd", "type": "occupancy", "above": 2, "for_s": 1.0}


def crowd_frames(counts: list[int], x: float = 50.0) -> list[FrameObservation]:
    return [frame(i, [track(t, (x, 50.0)) for t in range(n)]) for i, n in enumerate(counts)]


@pytest.mark.parametrize(
    ("rule", "counts", "cooldown_s", "expected"),
    [
        pytest.param(CROWD, [3] * 15, 60, [10], id="held"),
        pytest.param(CROWD, [3] * 50, 0, [10], id="once-per-episode"),
        pytest.param(CROWD, [2] * 20, 60, [], id="at-threshold-is-not-above"),
        pytest.param(CROWD, [3] * 9 + [0] * 10, 60, [], id="too-short"),
        pytest.param(CROWD, [3] * 5 + [2] + [3] * 9, 60, [10], id="one-frame-dip"),
        pytest.param(CROWD, [3] * 12 + [0] * 6 + [3] * 12, 0, [10, 28], id="re-arms"),
        pytest.param(CROWD, [3] * 12 + [0] * 6 + [3] * 12, 60, [10], id="re-arm-in-cooldown"),
        pytest.param(
            {**CROWD, "polygon": [[200, 0], [300, 0], [300, 100]]},
            [5] * 15,
            60,
            [],
            id="outside-polygon",
        ),
        pytest.param({**CROWD, "above": None, "below": 1}, [0] * 15, 60, [10], id="below"),
    ],
)
def test_occupancy(
    rule: dict[str, Any], counts: list[int], cooldown_s: float, expected: list[int]
) -> None:
    engine = engine_for(rule, cooldown_s=cooldown_s)
    assert fired_frames(engine, crowd_frames(counts)) == expected


def test_occupancy_firing_names_the_counted_tracks() -> None:
    engine = engine_for({**CROWD, "classes": ["person"]})
    frames = [
        frame(i, [track(t, (50, 50)) for t in (4, 2, 9)] + [track(5, (50, 50), "car")])
        for i in range(11)
    ]
    (firing,) = [f for obs in frames for f in engine.observe(obs)]
    assert firing.track_ids == (2, 4, 9) and firing.first_seen == frames[0].capture_time


# --- forbidden_class -----------------------------------------------------------------------
TRUCKS = {"id": "no-trucks", "type": "forbidden_class", "classes": ["truck"], "for_s": 0.5}


@pytest.mark.parametrize(
    ("timeline", "expected"),
    [
        pytest.param("T" * 10, [(5, 1)], id="fires-once"),
        pytest.param("T" + "-" * 10, [], id="one-frame-misdetection"),
        pytest.param("T" * 10 + "-" * 20 + "T" * 10, [(5, 1)], id="once-per-track"),
        pytest.param("P" * 20, [], id="other-class"),
        pytest.param("2" * 10, [(5, 1), (5, 2)], id="each-track"),
    ],
)
def test_forbidden_class(timeline: str, expected: list[tuple[int, int]]) -> None:
    spec = {"T": [(1, "truck")], "P": [(1, "person")], "-": [], "2": [(2, "truck"), (1, "truck")]}
    frames = [
        frame(i, [track(t, (50, 50), c) for t, c in spec[ch]]) for i, ch in enumerate(timeline)
    ]
    engine = engine_for(TRUCKS)
    got = [(f.frame_id, f.track_ids[0]) for obs in frames for f in engine.observe(obs)]
    assert got == expected


# --- input_quality -------------------------------------------------------------------------
BLIND = {
    "id": "blind",
    "type": "input_quality",
    "min_brightness": 40,
    "min_sharpness": 20,
    "for_s": 1.0,
}


@pytest.mark.parametrize(
    ("timeline", "cooldown_s", "expected"),
    [
        pytest.param("D" * 15, 60, [10], id="dark"),
        pytest.param("B" * 15, 60, [10], id="blurred"),
        pytest.param("DDDDDBBBBBDDDDD", 60, [10], id="dark-then-blurred-is-one-episode"),
        pytest.param("DDDDD" + "g" + "D" * 9, 60, [10], id="one-good-frame"),
        pytest.param("D" * 9 + "g" * 10, 60, [], id="too-short"),
        pytest.param("D" * 12 + "g" * 6 + "D" * 12, 0, [10, 28], id="re-arms"),
        pytest.param("n" * 15, 60, [], id="not-measured"),
        pytest.param("g" * 15, 60, [], id="good"),
    ],
)
def test_input_quality(timeline: str, cooldown_s: float, expected: list[int]) -> None:
    spec: dict[str, dict[str, float]] = {
        "D": {"brightness": 10, "sharpness": 500},
        "B": {"brightness": 120, "sharpness": 5},
        "g": {"brightness": 120, "sharpness": 500},
        "n": {},
    }
    frames = [frame(i, **spec[c]) for i, c in enumerate(timeline)]
    assert fired_frames(engine_for(BLIND, cooldown_s=cooldown_s), frames) == expected


# --- camera_silent -------------------------------------------------------------------------
SILENT = {"id": "silent", "type": "camera_silent", "after_s": 10}


@pytest.mark.parametrize(
    ("cooldown_s", "checks", "expected"),
    [
        pytest.param(60, [(100, 105), (100, 109.9)], [], id="not-yet"),
        pytest.param(60, [(100, 110), (100, 111), (100, 500)], [110], id="once-per-silence"),
        pytest.param(0, [(100, 110), (115, 120), (115, 126)], [110, 126], id="new-silence"),
        pytest.param(60, [(100, 110), (115, 126), (115, 170)], [110, 170], id="cooldown"),
        pytest.param(60, [(None, 500)], [], id="never-seen"),
    ],
)
def test_camera_silent(
    cooldown_s: float, checks: list[tuple[float | None, float]], expected: list[float]
) -> None:
    engine = engine_for(SILENT, cooldown_s=cooldown_s)
    got = []
    for last_seen, now in checks:
        seen = {} if last_seen is None else {CAM: last_seen}
        got += [f.last_seen for f in engine.check_silence(seen, now)]
    assert got == expected


def test_silence_id_is_the_same_from_any_replica() -> None:
    a = engine_for(SILENT).check_silence({CAM: 100.0, "other": 0.0}, 111)
    b = engine_for(SILENT).check_silence({CAM: 100.0}, 140)
    assert len(a) == 1 and a[0].alert_id == b[0].alert_id and a[0].first_seen == 100.0


# --- drift ---------------------------------------------------------------------------------
DARK = SignalObs("brightness", statistic=312.4, threshold=95.12, value=31.2, reference=118.5)
MOVED = SignalObs("thumb_dist", statistic=140.0, threshold=88.0, value=0.41, reference=0.0)


def drift(started: bool, *signals: SignalObs, event: str = "ep-1") -> DriftObservation:
    frame_id = 40 if started else 95
    return DriftObservation(
        CAM, event, started, frame_id, 1000.0 + frame_id / FPS, signals, ("contrast",), 40
    )


@pytest.mark.parametrize(
    ("only", "moved", "fires"),
    [
        pytest.param(None, [DARK], True, id="any-signal"),
        pytest.param(None, [], True, id="any-signal-even-unnamed"),
        pytest.param(["brightness"], [DARK, MOVED], True, id="one-of-several-moved"),
        pytest.param(["brightness", "thumb_dist"], [MOVED], True, id="one-of-the-listed"),
        pytest.param(["brightness"], [MOVED], False, id="another-signal-moved"),
        pytest.param(["contrast"], [DARK], False, id="only-also-moving"),
    ],
)
def test_drift_fires_when_a_listed_signal_moved(
    only: list[str] | None, moved: list[SignalObs], fires: bool
) -> None:
    rule = {"id": "drift", "type": "drift"} | ({} if only is None else {"signals": only})
    firings = engine_for(rule).observe_drift(drift(True, *moved))
    assert [f.rule_id for f in firings] == (["drift"] if fires else [])


def test_drift_firing_says_what_moved_and_by_how_much() -> None:
    rule = {"id": "cam-drift", "type": "drift", "severity": "critical"}
    [firing] = engine_for(rule).observe_drift(drift(True, DARK, MOVED))
    assert firing.alert_id == alert_id(CAM, "cam-drift", "drift", "ep-1")
    assert (firing.severity, firing.track_ids, firing.frame_id) == ("critical", (), 40)
    assert firing.first_seen == firing.last_seen == 1004.0
    assert firing.resolvable and not firing.resolves
    assert firing.message == (
        "camera drifted from its reference: "
        "brightness 31.2 vs reference 118.5 (statistic 312.4 > threshold 95.12), "
        "thumb_dist 0.41 vs reference 0 (statistic 140 > threshold 88); "
        "also moving: contrast ('cam-drift')"
    )


def test_drift_end_resolves_the_episode_alert() -> None:
    """Whatever the filter: the ENDED event names no moved signals, and the alert service sends
    the resolution only if the firing went out."""
    engine = engine_for({"id": "drift", "type": "drift", "signals": ["thumb_dist"]})
    [resolution] = engine.observe_drift(drift(False))
    assert resolution.resolves == alert_id(CAM, "drift", "drift", "ep-1")
    assert resolution.alert_id not in (resolution.resolves, "")
    assert not resolution.resolvable and resolution.frame_id == 95
    assert "drift episode from frame 40 is over" in resolution.message


def test_drift_events_are_deterministic_and_change_no_state() -> None:
    engine, other = engine_for(*ALL_RULES, DRIFT), engine_for(*ALL_RULES, DRIFT)
    before = engine.to_state(CAM)
    first = engine.observe_drift(drift(True, DARK))
    assert engine.observe_drift(drift(True, DARK)) == first  # a replay: same id, deduped later
    assert other.observe_drift(drift(True, DARK)) == first  # any replica
    assert engine.observe_drift(drift(True, DARK, event="ep-2"))[0].alert_id != first[0].alert_id
    assert engine.to_state(CAM) == before
    assert engine.observe_drift(dataclasses.replace(drift(True, DARK), camera_id="other")) == []


# --- delivery, determinism, snapshots ------------------------------------------------------
ALL_RULES = [ZONE, LINE, CROWD, TRUCKS, BLIND, SILENT]
DRIFT = {"id": "drift", "type": "drift", "signals": ["brightness"]}


def mixed_frames(n: int = 80) -> list[FrameObservation]:
    """Tracks walking through the zone, across the line, a truck, a crowd and a dark spell."""
    frames = []
    for i in range(n):
        tracks = [
            track(1, (20 + 3 * i, 60)),
            track(2, (60, 20 + i % 3)),
            track(9, (50, 50), "truck"),
        ]
        if 20 <= i < 50:
            tracks.append(track(4, (10.0 + i, 90)))
        quality = {"brightness": 10.0 if 30 <= i < 60 else 120.0, "sharpness": 300.0}
        frames.append(frame(i, tracks, **quality))
    return frames


def test_mixed_sequence_fires_every_track_rule() -> None:
    engine = engine_for(*ALL_RULES)
    rules = {f.rule_id for obs in mixed_frames() for f in engine.observe(obs)}
    assert rules == {"lawn", "gate", "crowd", "no-trucks", "blind"}


def test_duplicate_and_late_frames_are_ignored() -> None:
    engine = engine_for(*ALL_RULES)
    frames = mixed_frames(30)
    for obs in frames[:20]:
        engine.observe(obs)
    before = json.dumps(engine.to_state(CAM))
    assert engine.observe(frames[19]) == []  # redelivered
    assert engine.observe(frames[5]) == []  # late
    assert engine.observe(frame(12, [track(50, (50, 50), "truck")] * 3, brightness=0)) == []
    assert json.dumps(engine.to_state(CAM)) == before
    assert engine.observe(FrameObservation("unknown-cam", 1, 0.0)) == []


def test_replay_gives_the_same_firings_and_ids() -> None:
    engine_a, engine_b = engine_for(*ALL_RULES), engine_for(*ALL_RULES)
    run_a = [f for obs in mixed_frames() for f in engine_a.observe(obs)]
    run_b = [f for obs in mixed_frames() for f in engine_b.observe(obs)]
    assert run_a == run_b and len(run_a) >= 5
    assert len({f.alert_id for f in run_a}) == len(run_a)  # distinct episodes, distinct ids
    assert [f for obs in mixed_frames() for f in engine_a.observe(obs)] == []  # redelivered


# 29: track 1 is one frame onto the far side of the line (crossing pending); 35: mid dark spell.
@pytest.mark.parametrize("split", [1, 9, 10, 25, 29, 35, 40, 55])
def test_snapshot_restore_continues_identically(split: int) -> None:
    frames = mixed_frames()
    original = engine_for(*ALL_RULES)
    for obs in frames[:split]:
        original.observe(obs)
    snapshot = json.loads(json.dumps(original.to_state(CAM)))  # as it would travel via Redis
    replica = engine_for(*ALL_RULES)
    replica.load_state(CAM, snapshot)
    assert replica.to_state(CAM) == original.to_state(CAM)
    tail_original = [f for obs in frames[split:] for f in original.observe(obs)]
    tail_replica = [f for obs in frames[split:] for f in replica.observe(obs)]
    assert tail_replica == tail_original
    assert replica.check_silence({CAM: 2000.0}, 2011.0) == original.check_silence(
        {CAM: 2000.0}, 2011.0
    )
    assert replica.observe(frames[split - 1]) == []  # the restored replica dedupes too


@pytest.mark.parametrize(
    ("change", "error"),
    [
        pytest.param({"version": 99}, "version"),
        pytest.param({"camera_id": "other"}, "is for 'other'"),
        pytest.param(
            {"rules": [{"id": "lawn", "type": "zone_intrusion", "state": {}}]}, "malformed"
        ),
    ],
)
def test_unusable_snapshot_is_refused_and_state_kept(change: dict[str, Any], error: str) -> None:
    engine = engine_for(*ALL_RULES)
    for obs in mixed_frames(15):
        engine.observe(obs)
    before = engine.to_state(CAM)
    with pytest.raises(ValueError, match=error):
        engine.load_state(CAM, {**before, **change})
    assert engine.to_state(CAM) == before


# --- rule files ----------------------------------------------------------------------------
HEADER = "defaults: {cooldown_s: 60}\ncameras:\n  demo:\n    rules:\n"  # rules start on line 5
OK_RULE = "      - {id: a, type: zone_intrusion, polygon: [[0, 0], [10, 0], [10, 10]]}\n"


@pytest.mark.parametrize(
    ("body", "line", "reason"),
    [
        pytest.param(
            OK_RULE + "      - id: b\n        type: zone_intrusoin\n",
            7,
            "cameras.demo.rules[1].type: unknown rule type 'zone_intrusoin'",
            id="unknown-type",
        ),
        pytest.param(
            OK_RULE + "      - id: b\n        type: zone_intrusion\n        polgon: [[0, 0]]\n",
            8,
            "cameras.demo.rules[1].polgon: unknown key 'polgon' (did you mean 'polygon'?)",
            id="misspelled-key",
        ),
        pytest.param(
            OK_RULE + "      - id: b\n        type: occupancy\n        above: 8\n"
            "        polygon:\n          - [0, 0]\n          - [5, 5]\n",
            9,
            "cameras.demo.rules[1].polygon: at least 3 points",
            id="polygon-with-2-points",
        ),
        pytest.param(
            OK_RULE
            + "      - {id: x, type: camera_silent}\n      - {id: a, type: camera_silent}\n",
            7,
            "cameras.demo.rules[2].id: duplicate rule id 'a'",
            id="duplicate-rule-id",
        ),
        pytest.param(
            OK_RULE + "      - {id: b, type: camera_silent\n      - {id: c}\n",
            7,
            "invalid YAML: expected ',' or '}'",
            id="bad-yaml-syntax",
        ),
        pytest.param(
            OK_RULE + "      - {id: b, type: occupancy, for_s: 2}\n",
            6,
            "cameras.demo.rules[1]: set exactly one of above and below",
            id="no-threshold",
        ),
        pytest.param(
            OK_RULE + "      - {id: b, type: line_crossing, start: [1, 1], end: [1, 1]}\n",
            6,
            "cameras.demo.rules[1].end: end must differ from start",
            id="zero-length-line",
        ),
        pytest.param(
            OK_RULE + "  demo:\n    rules: []\n",
            6,
            "duplicate key 'demo' (first on line 3)",
            id="duplicate-camera",
        ),
        pytest.param(
            OK_RULE + "      - {id: b, type: drift, signals: [brightnes]}\n",
            6,
            "cameras.demo.rules[1].signals[0]: unknown drift signal 'brightnes' "
            "(did you mean 'brightness'?)",
            id="misspelled-drift-signal",
        ),
        pytest.param(
            OK_RULE + "      - id: b\n        type: drift\n        signals:\n"
            "          - thumb_dist\n          - fog\n",
            10,
            "cameras.demo.rules[1].signals[1]: unknown drift signal 'fog' (expected one of "
            "brightness, contrast,",
            id="unknown-drift-signal",
        ),
        pytest.param(
            OK_RULE + "      - {id: b, type: drift, signal: [brightness]}\n",
            6,
            "cameras.demo.rules[1].signal: unknown key 'signal' (did you mean 'signals'?)",
            id="misspelled-drift-key",
        ),
        pytest.param(
            OK_RULE + "      - {id: b, type: drift, signals: []}\n",
            6,
            "cameras.demo.rules[1].signals: an empty list matches nothing",
            id="no-drift-signals",
        ),
        pytest.param(
            OK_RULE + "      - {id: b, type: camera_silent, after_s: -1, severity: urgent}\n",
            6,
            "cameras.demo.rules[1].after_s: Input should be greater than 0",
            id="bad-values",
        ),
    ],
)
def test_invalid_rule_file_names_line_and_reason(
    tmp_path: Path, body: str, line: int, reason: str
) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(HEADER + body)
    with pytest.raises(RuleFileError) as error:
        load_rules(path)
    message = str(error.value)
    assert message.startswith(f"{path}:{line}: "), message  # problems are sorted by line
    assert f"{path}:{line}: {reason}" in message or reason in message.splitlines()[0], message


def test_every_problem_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(HEADER + OK_RULE + "      - {id: b, type: nope}\n      - {id: c}\n")
    with pytest.raises(RuleFileError) as error:
        load_rules(path)
    assert [m.split(": ")[0] for m in str(error.value).splitlines()] == [f"{path}:6", f"{path}:7"]


def test_unreadable_or_empty_file(tmp_path: Path) -> None:
    with pytest.raises(RuleFileError, match="cannot read"):
        load_rules(tmp_path / "missing.yaml")
    (tmp_path / "empty.yaml").write_text("# nothing\n")
    with pytest.raises(RuleFileError, match=r"empty.yaml:1: expected a mapping"):
        load_rules(tmp_path / "empty.yaml")


def test_demo_rules_load_and_run() -> None:
    ruleset = load_rules(DEMO_RULES)
    rules = ruleset.cameras["demo"].rules
    assert {r.type for r in rules} >= {
        "zone_intrusion",
        "line_crossing",
        "occupancy",
        "camera_silent",
        "input_quality",
        "drift",
    }
    engine = AlertEngine(ruleset)
    obs = FrameObservation("demo", 1, 0.0, (TrackObs(1, "person", (100, 300, 130, 400), 0.9),))
    assert engine.observe(obs) == []
    assert engine.to_state("demo")["last_frame_id"] == 1
