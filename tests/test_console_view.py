"""The console's state from the topics' records, and its settings: pure logic, no servers."""

from __future__ import annotations

import pytest

from services.console.live import LiveView
from services.console.settings import ConsoleSettings
from services.core.errors import ConfigError
from services.core.settings import load
from steadyeye.v1.alerts_pb2 import Alert, AlertState
from steadyeye.v1.common_pb2 import FrameRef
from steadyeye.v1.detections_pb2 import DegradedReason, Detection, Detections, ModelRef
from steadyeye.v1.drift_pb2 import DriftEvent, DriftState, SignalDrift
from steadyeye.v1.tracks_pb2 import Track, Tracks, TrackState

T0 = 1_800_000_000.0


def tracks(frame_id: int, captured: float, *states: TrackState.ValueType) -> Tracks:
    ref = FrameRef(camera_id="cam", frame_id=frame_id, width=64, height=48)
    ref.capture_time.FromNanoseconds(int(captured * 1e9))
    person = Detection(class_name="person", score=0.9)
    return Tracks(
        ref=ref,
        tracks=[Track(track_id=k + 1, state=s, detection=person) for k, s in enumerate(states)],
    )


def test_a_tile_shows_the_newest_frame_and_its_live_tracks():
    view = LiveView()
    updated, ended = TrackState.TRACK_STATE_UPDATED, TrackState.TRACK_STATE_ENDED
    view.add_tracks(tracks(0, T0, updated), "", T0 + 0.1)
    view.add_tracks(tracks(1, T0 + 0.1, updated, ended), "ab" * 16, T0 + 0.3)

    [newest, older] = view.recent_frames("cam")
    assert (newest.frame_id, older.frame_id) == (1, 0)
    assert [b.track_id for b in newest.boxes] == [1]  # an ended track has left the picture
    [health] = view.health(now=T0 + 0.3)
    assert health["latency_ms"] == {"p50": 150, "p95": 195}
    assert health["trace_id"] == "ab" * 16


@pytest.mark.parametrize(
    ("frame_id", "captured", "moves"),
    [
        (5, T0 + 5, False),  # a redelivery of the newest frame
        (3, T0 + 3, False),  # a redelivery of an older one: the tile never goes back
        (0, T0 + 60, True),  # the camera restarted from its first frame, later
        (6, T0 + 6, True),
    ],
)
def test_only_later_frames_move_a_tile(frame_id, captured, moves):
    view = LiveView()
    view.add_tracks(tracks(5, T0 + 5), "", T0 + 5)
    view.add_tracks(tracks(frame_id, captured), "", T0 + 61)
    shown = [f.frame_id for f in view.recent_frames("cam")]
    assert shown == ([frame_id, 5] if moves else [5])


def test_a_camera_falls_silent_after_ten_seconds_without_frames():
    view = LiveView()
    view.add_tracks(tracks(0, T0), "", T0)
    assert view.health(now=T0 + 9)[0]["status"] == "live"
    assert view.health(now=T0 + 11)[0]["status"] == "silent"


def test_model_tier_and_drift_follow_the_latest_events():
    view = LiveView()
    ref = FrameRef(camera_id="cam", frame_id=1)
    view.add_detections(
        Detections(
            ref=ref,
            model=ModelRef(name="yolox_nano_int8", version="1"),
            degraded=True,
            degraded_reason=DegradedReason.DEGRADED_REASON_UNAVAILABLE,
            tier="int8",
        )
    )
    started = DriftEvent(
        event_id="e", state=DriftState.DRIFT_STATE_STARTED, ref=ref,
        signals=[SignalDrift(name="brightness")],
    )  # fmt: skip
    view.add_drift(started)
    [health] = view.health(now=T0)
    assert (health["model"], health["degraded"], health["tier"]) == (
        "yolox_nano_int8", "unavailable", "int8",
    )  # fmt: skip
    assert health["drift"] == "drifting since frame 1 (brightness)"

    view.add_detections(Detections(ref=ref, model=ModelRef(name="yolox_nano", version="2")))
    view.add_drift(DriftEvent(event_id="e", state=DriftState.DRIFT_STATE_ENDED, ref=ref))
    [health] = view.health(now=T0)
    assert (health["version"], health["degraded"], health["drift"]) == ("2", "", "")


def alert(alert_id: str, state=AlertState.ALERT_STATE_UNSPECIFIED) -> Alert:
    return Alert(alert_id=alert_id, rule_id="yard", ref=FrameRef(camera_id="cam"), state=state)


def test_alerts_are_kept_newest_first_bounded_and_once_each():
    view = LiveView(alerts_kept=3)
    for alert_id in ("a", "b", "c", "b", "d"):
        view.add_alert(alert(alert_id), "")
    assert [a.alert_id for a in view.alerts()] == ["d", "b", "c"]
    view.add_alert(alert("e", AlertState.ALERT_STATE_RESOLVED), "")
    assert [(a.alert_id, a.state) for a in view.alerts()[:2]] == [("e", "resolved"), ("d", "")]


@pytest.mark.parametrize(
    ("environ", "problem"),
    [
        ({}, None),
        ({"STEADYEYE_CONSOLE_HTTP_HOST": "::1"}, None),
        ({"STEADYEYE_CONSOLE_HTTP_HOST": "0.0.0.0"}, "set STEADYEYE_CONSOLE_TOKEN"),
        ({"STEADYEYE_CONSOLE_HTTP_HOST": "console.internal"}, "set STEADYEYE_CONSOLE_TOKEN"),
        ({"STEADYEYE_CONSOLE_HTTP_HOST": "0.0.0.0", "STEADYEYE_CONSOLE_TOKEN": "x" * 16}, None),
        ({"STEADYEYE_CONSOLE_TOKEN": "short"}, "at least 16 characters"),
        ({"STEADYEYE_CONSOLE_TRACE_URL": "http://jaeger/trace/"}, "no {trace_id} placeholder"),
        ({"STEADYEYE_CONSOLE_TRACE_URL": "http://jaeger/trace/{trace_id}"}, None),
        ({"STEADYEYE_CONSOLE_TOKN": "x" * 16}, "STEADYEYE_CONSOLE_TOKEN"),  # misspelled
    ],
)
def test_settings(environ, problem):
    if problem is None:
        load(ConsoleSettings, environ)
    else:
        with pytest.raises(ConfigError, match=problem):
            load(ConsoleSettings, environ)
