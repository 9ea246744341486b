"""Tracker settings: every threshold the algorithm uses lives here, none in the code."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class TrackerConfig:
    """Settings of one ByteTracker. Defaults follow the ByteTrack paper unless noted.

    Costs are 1 - IoU (times the detection score when `fuse_score`); a pair is matched only
    when its cost is at most the stage's threshold.
    """

    # Detections at or above this score take part in the first association stage.
    high_thresh: float = 0.5
    # Detections in [low_thresh, high_thresh) are only used to keep existing tracks alive
    # (ByteTrack's second stage): they never start a track.
    low_thresh: float = 0.1
    # An unmatched high detection starts a tentative track only at or above this score. 0.5
    # (= high_thresh) by measurement (docs/tracking.md): ByteTrack's margin of 0.1 cost HOTA on
    # every real sequence, and min_hits already keeps one-frame detections from showing.
    new_track_thresh: float = 0.5
    match_thresh: float = 0.8  # stage 1: confirmed tracks vs high detections
    # Stage 2: confirmed tracks left vs low detections. ByteTrack's 0.5: looser gates won two
    # short real sequences but let low-score detections swap ids in held-out crowds.
    low_match_thresh: float = 0.5
    # Stage 3: tentative tracks vs leftover detections. 0.8 (was 0.7) by measurement.
    tentative_match_thresh: float = 0.8
    # Confirmed tracks still unmatched after stages 1-2 get one more chance at the high
    # detections left, by IoU with their last matched box rather than their prediction
    # (OC-SORT's observation-centric recovery): a track whose prediction ran off while it was
    # occluded is found where it was last seen instead of the object getting a new id. Cost
    # 1 - IoU; 0.6 (IoU >= 0.4): looser, it hands a lost track a passer-by in a crowd. Skipped
    # while the scene moves (scene_motion_ref); None disables.
    recovery_thresh: float | None = 0.6
    # Weight the IoU by the detection score in stages 1 and 3, so a confident detection wins a
    # tie between overlapping candidates.
    fuse_score: bool = True
    # Consecutive matched updates before a track is confirmed and gets an id. 2 by measurement
    # (steadyeye/bench/tracking.py): 1 lets one-frame false positives through, 3 costs a frame
    # at every track start and rejected nothing more on our sequences.
    min_hits: int = 2
    # Frames a confirmed track may go unmatched and still be re-found; it ends in the update
    # that exceeds this. Counted in frame ids, so dropped frames count too.
    track_buffer: int = 30
    # Never match a detection to a track of another class.
    class_aware: bool = True
    # A tracked and a lost track overlapping at least this much are one object seen twice;
    # the younger is dropped (ByteTrack does this at 0.85). None, the default, disables it: on
    # our benchmarks it only ever dropped the right track of two people crossing.
    duplicate_iou: float | None = None
    # Stage 2 (low-score detections) also for lost tracks, not only for those matched last
    # frame: an object coming out of occlusion scores low at first, and waiting for a high
    # score to re-find it gave its detections to nobody (or to a new id).
    low_for_lost: bool = True
    # Tentative tracks may be confirmed by low-score detections left over from stage 2, so a
    # new object's second frame need not score high as well.
    low_for_tentative: bool = True
    # Direction consistency (OC-SORT's momentum): every association cost gains weight x the
    # angle (in units of pi) between a track's velocity and the step from its last matched box
    # to the candidate, so two people crossing keep their own directions. Only where both the
    # velocity and the step exceed direction_min_step box heights per frame: a smaller step is
    # mostly detector jitter and its angle means nothing. 0 disables.
    direction_weight: float = 0.1
    direction_min_step: float = 0.03
    # Scene motion: how far, in box heights, detections land from their predictions on a
    # typical frame (the median over tracks matched in consecutive frames, averaged with weight
    # scene_motion_rate per update). A fixed camera stays near 0.03-0.045; one on a moving car
    # near 0.1 (docs/tracking.md). Above scene_motion_ref, the ratio r = level / ref (capped at
    # scene_motion_max) multiplies the Kalman velocity noise by r ** scene_velocity_power,
    # relaxes every association gate to 1 - (1 - gate) / r ** scene_gate_power and skips the
    # recovery stage, so tracks follow a moving camera; below it nothing changes. None
    # disables.
    scene_motion_ref: float | None = 0.05
    scene_motion_rate: float = 0.05
    scene_motion_max: float = 2.0
    scene_velocity_power: float = 8.0
    scene_gate_power: float = 1.5
    # A confirmed track no detection matched is still reported, at its Kalman prediction, for
    # up to this many frames in a row (coasting; DeepSORT reports 1): an object briefly
    # occluded or missed by the detector keeps its box instead of a gap. Not while the scene
    # moves (scene_motion_ref), where predictions drift. 3 by measurement (docs/tracking.md):
    # 2-5 are within 0.6 HOTA of each other, and a shorter guess is the safer one. 0 disables.
    coast_frames: int = 3
    # Kalman noise, as fractions of the box height (ByteTrack's values); aspect terms are
    # absolute because the aspect ratio is unitless.
    std_weight_position: float = 1.0 / 20
    std_weight_velocity: float = 1.0 / 160
    std_aspect: float = 1e-2
    std_aspect_velocity: float = 1e-5
    std_aspect_measurement: float = 1e-1

    def __post_init__(self) -> None:
        if not 0.0 <= self.low_thresh <= self.high_thresh <= self.new_track_thresh:
            raise ValueError(
                "need 0 <= low_thresh <= high_thresh <= new_track_thresh, got "
                f"{self.low_thresh}, {self.high_thresh}, {self.new_track_thresh}"
            )
        for name in (
            "match_thresh",
            "low_match_thresh",
            "tentative_match_thresh",
            "recovery_thresh",
            "scene_motion_rate",
        ):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        if self.scene_motion_ref is not None and self.scene_motion_ref <= 0:
            raise ValueError(f"scene_motion_ref must be > 0 or None, got {self.scene_motion_ref}")
        if self.scene_motion_max < 1.0:
            raise ValueError(f"scene_motion_max must be >= 1, got {self.scene_motion_max}")
        for name in (
            "direction_weight",
            "direction_min_step",
            "scene_velocity_power",
            "scene_gate_power",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        if self.min_hits < 1:
            raise ValueError(f"min_hits must be >= 1, got {self.min_hits}")
        if self.coast_frames < 0:
            raise ValueError(f"coast_frames must be >= 0, got {self.coast_frames}")
        if self.track_buffer < 0:
            raise ValueError(f"track_buffer must be >= 0, got {self.track_buffer}")
        if self.duplicate_iou is not None and not 0.0 < self.duplicate_iou <= 1.0:
            raise ValueError(f"duplicate_iou must be in (0, 1] or None, got {self.duplicate_iou}")
        for name in (
            "std_weight_position",
            "std_weight_velocity",
            "std_aspect",
            "std_aspect_velocity",
            "std_aspect_measurement",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
