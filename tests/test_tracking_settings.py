"""STEADYEYE_TRACKING_* settings become the tracker's config: switches turn the additions to
ByteTrack off, and a misspelled setting is refused."""

from __future__ import annotations

import pytest

from services.core.settings import ConfigError, load
from services.tracking.settings import TrackingSettings
from services.tracking.tracker import TrackerConfig


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, TrackerConfig()),
        ({"STEADYEYE_TRACKING_RECOVERY": "false"}, TrackerConfig(recovery_thresh=None)),
        ({"STEADYEYE_TRACKING_RECOVERY_THRESH": "0.5"}, TrackerConfig(recovery_thresh=0.5)),
        ({"STEADYEYE_TRACKING_DIRECTION_WEIGHT": "0"}, TrackerConfig(direction_weight=0.0)),
        ({"STEADYEYE_TRACKING_SCENE_MOTION": "false"}, TrackerConfig(scene_motion_ref=None)),
        ({"STEADYEYE_TRACKING_SCENE_MOTION_REF": "0.08"}, TrackerConfig(scene_motion_ref=0.08)),
        ({"STEADYEYE_TRACKING_MIN_HITS": "3"}, TrackerConfig(min_hits=3)),
        ({"STEADYEYE_TRACKING_COAST_FRAMES": "0"}, TrackerConfig(coast_frames=0)),
    ],
)
def test_settings_become_the_tracker_config(environ: dict, expected: TrackerConfig) -> None:
    assert load(TrackingSettings, environ).tracker_config() == expected


@pytest.mark.parametrize(
    "environ",
    [
        {"STEADYEYE_TRACKING_RECOVERY_TRESH": "0.5"},
        {"STEADYEYE_TRACKING_SCENE_MOTION_REF": "0"},
        {"STEADYEYE_TRACKING_DIRECTION_WEIGHT": "-1"},
        {"STEADYEYE_TRACKING_COAST_FRAMES": "-1"},
    ],
)
def test_bad_settings_are_refused(environ: dict) -> None:
    with pytest.raises(ConfigError):
        load(TrackingSettings, environ)
