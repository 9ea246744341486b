"""Alert rules: a pure-logic engine from tracked frames to deterministic alerts.

    ruleset = load_rules(Path("rules.yaml"))   # RuleFileError: "rules.yaml:12: where: why"
    engine = AlertEngine(ruleset)
    firings = engine.observe(FrameObservation(...))          # once per camera frame
    firings += engine.check_silence(last_seen_by_camera, now)  # periodically
    firings += engine.observe_drift(DriftObservation(...))   # a drift episode starts or ends
    snapshot = engine.to_state("cam-1"); other.load_state("cam-1", snapshot)

No Kafka or Redis here: the alert service's handler does the I/O.
"""

from .engine import STATE_VERSION, AlertEngine
from .events import DriftObservation, Firing, FrameObservation, SignalObs, TrackObs, alert_id
from .loader import RuleFileError, load_rules, parse_rules
from .models import (
    CameraRules,
    CameraSilent,
    Defaults,
    Drift,
    ForbiddenClass,
    InputQuality,
    LineCrossing,
    Occupancy,
    RuleSet,
    ZoneIntrusion,
)

__all__ = [
    "STATE_VERSION",
    "AlertEngine",
    "CameraRules",
    "CameraSilent",
    "Defaults",
    "Drift",
    "DriftObservation",
    "Firing",
    "ForbiddenClass",
    "FrameObservation",
    "InputQuality",
    "LineCrossing",
    "Occupancy",
    "RuleFileError",
    "RuleSet",
    "SignalObs",
    "TrackObs",
    "ZoneIntrusion",
    "alert_id",
    "load_rules",
    "parse_rules",
]
