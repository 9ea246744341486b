"""Our ByteTracker: identities through crossings and occlusions, flicker hysteresis, frame gaps,
stale deliveries, snapshot/restore, class-aware matching."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.tracking.tracker import STATE_VERSION, ByteTracker, TrackerConfig, TrackUpdate
from services.tracking.tracker.kalman import KalmanFilter


def box(cx: float, cy: float, w: float = 40.0, h: float = 100.0) -> list[float]:
    return [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]


@dataclass
class Frame:
    boxes: list[list[float]] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    classes: list[int] = field(default_factory=list)

    def add(self, b: list[float], score: float = 0.9, cls: int = 0) -> int:
        self.boxes.append(b)
        self.scores.append(score)
        self.classes.append(cls)
        return len(self.boxes) - 1


def step(tracker: ByteTracker, frame: Frame, frame_id: int) -> TrackUpdate:
    return tracker.update(
        np.array(frame.boxes, dtype=np.float64).reshape(-1, 4),
        np.array(frame.scores, dtype=np.float64),
        np.array(frame.classes, dtype=np.int64),
        frame_id,
    )


def random_stream(seed: int, frames: int = 150, objects: int = 8) -> list[tuple[int, Frame]]:
    """Objects of two classes that come and go, with jitter, misses, low scores, false
    positives, and a few dropped frame ids."""
    rng = np.random.default_rng(seed)
    start = rng.uniform([50, 50], [600, 400], size=(objects, 2))
    vel = rng.uniform(-4, 4, size=(objects, 2))
    cls = rng.integers(0, 2, size=objects)
    born = rng.integers(1, frames // 2, size=objects)
    dies = born + rng.integers(frames // 5, frames, size=objects)
    out = []
    frame_ids = [f for f in range(1, frames + 1) if rng.random() > 0.05]
    for f in frame_ids:
        fr = Frame()
        for i in range(objects):
            if not born[i] <= f <= dies[i] or rng.random() < 0.1:
                continue
            cx, cy = start[i] + vel[i] * f + rng.normal(0, 1.5, 2)
            fr.add(box(cx, cy), float(rng.uniform(0.2, 0.95)), int(cls[i]))
        for _ in range(rng.poisson(1.0)):
            fr.add(box(*rng.uniform([0, 0], [700, 500])), float(rng.uniform(0.1, 0.8)), 0)
        out.append((f, fr))
    return out


def ids_of(updates: dict[int, TrackUpdate], rows: dict[int, int]) -> dict[int, int]:
    """frame -> track id of the row recorded for that frame."""
    return {f: int(updates[f].track_ids[r]) for f, r in rows.items()}


# --- Kalman filter ----------------------------------------------------------------------------


class DenseKalman:
    """ByteTrack's filter written out with full 8x8 matrices, as the reference."""

    def __init__(self, cfg: TrackerConfig) -> None:
        self.cfg = cfg
        self.motion = np.eye(8) + np.eye(8, k=4)
        self.observe = np.eye(4, 8)

    def initiate(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        c, h = self.cfg, z[3]
        wp, wv = c.std_weight_position, c.std_weight_velocity
        std = [2 * wp * h, 2 * wp * h, c.std_aspect, 2 * wp * h]
        std += [10 * wv * h, 10 * wv * h, c.std_aspect_velocity, 10 * wv * h]
        return np.r_[z, np.zeros(4)], np.diag(np.square(std))

    def predict(self, mean: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        c, h = self.cfg, mean[3]
        wp, wv = c.std_weight_position, c.std_weight_velocity
        std = [wp * h, wp * h, c.std_aspect, wp * h, wv * h, wv * h, c.std_aspect_velocity, wv * h]
        q = np.diag(np.square(std))
        return self.motion @ mean, self.motion @ cov @ self.motion.T + q

    def update(
        self, mean: np.ndarray, cov: np.ndarray, z: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        c, h = self.cfg, mean[3]
        wp = c.std_weight_position
        r = np.diag(np.square([wp * h, wp * h, c.std_aspect_measurement, wp * h]))
        s = self.observe @ cov @ self.observe.T + r
        gain = cov @ self.observe.T @ np.linalg.inv(s)
        return mean + gain @ (z - self.observe @ mean), cov - gain @ s @ gain.T


def test_blockwise_kalman_equals_the_dense_filter() -> None:
    cfg = TrackerConfig()
    rng = np.random.default_rng(1)
    ours, dense = KalmanFilter(cfg), DenseKalman(cfg)
    z0 = np.array([[100.0, 200.0, 0.4, 120.0], [500.0, 300.0, 0.5, 60.0]])
    mean, cov = ours.initiate(z0)
    ref = [dense.initiate(z) for z in z0]
    for k in range(40):
        mean, cov = ours.predict(mean, cov)
        ref = [dense.predict(m, p) for m, p in ref]
        if k % 5 != 4:  # some frames without a measurement
            z = z0 + [[3.0 * k, 1.0 * k, 0.0, 0.5 * k]] + rng.normal(0, 2, (2, 4)) * [1, 1, 0, 1]
            mean, cov = ours.update(mean, cov, z)
            ref = [dense.update(m, p, zi) for (m, p), zi in zip(ref, z, strict=True)]
    for i, (m, p) in enumerate(ref):
        np.testing.assert_allclose(mean[i], m, rtol=1e-9, atol=1e-9)
        axis = np.arange(4)
        for block, (a, b) in enumerate([(axis, axis), (axis, axis + 4), (axis + 4, axis + 4)]):
            np.testing.assert_allclose(cov[i, block], p[a, b], rtol=1e-9, atol=1e-12)
        # Everything outside the per-axis blocks is exactly zero in the dense filter too.
        mask = np.ones((8, 8), dtype=bool)
        for a, b in [(axis, axis), (axis, axis + 4), (axis + 4, axis), (axis + 4, axis + 4)]:
            mask[a, b] = False
        assert (p[mask] == 0).all()


# --- identities -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("speed", "dy", "hide_back"),
    [
        pytest.param(6.0, 30.0, False, id="clear-crossing"),
        pytest.param(12.0, 30.0, False, id="fast-crossing"),
        pytest.param(6.0, 20.0, True, id="back-object-hidden-while-crossing"),
    ],
)
def test_two_crossing_objects_keep_their_ids(speed: float, dy: float, hide_back: bool) -> None:
    tracker = ByteTracker(TrackerConfig())
    rows_a: dict[int, int] = {}
    rows_b: dict[int, int] = {}
    updates = {}
    for f in range(1, 61):
        xa, xb = 100 + speed * f, 100 + 60 * speed - speed * f
        fr = Frame()
        rows_a[f] = fr.add(box(xa, 200 + dy))  # lower in the image: in front
        if not (hide_back and abs(xa - xb) < 40):
            rows_b[f] = fr.add(box(xb, 200))
        updates[f] = step(tracker, fr, f)
    a = set(ids_of(updates, rows_a).values()) - {-1}
    b = set(ids_of(updates, rows_b).values()) - {-1}
    assert len(a) == 1 and len(b) == 1 and a != b
    # Only the first frame (min_hits = 2) goes without an id.
    assert all(i > 0 for f, i in ids_of(updates, rows_a).items() if f > 1)
    assert all(i > 0 for f, i in ids_of(updates, rows_b).items() if f > 1)
    if hide_back:
        assert len(rows_b) < 60  # the occlusion really happened


@pytest.mark.parametrize(("min_hits", "flicker_confirmed"), [(1, True), (2, False), (3, False)])
def test_flickering_detection_needs_min_hits_in_a_row(
    min_hits: int, flicker_confirmed: bool
) -> None:
    tracker = ByteTracker(TrackerConfig(min_hits=min_hits))
    started: list[tuple[int, int]] = []
    flicker_ids = []
    steady_ids = {}
    for f in range(1, 41):
        fr = Frame()
        steady = fr.add(box(100 + f, 100))
        flicker = fr.add(box(400, 300), score=0.95) if f % 2 else None
        u = step(tracker, fr, f)
        started += [(f, i) for i in u.started]
        steady_ids[f] = int(u.track_ids[steady])
        if flicker is not None:
            flicker_ids.append(int(u.track_ids[flicker]))
    # The steady object is confirmed exactly at its min_hits-th frame, and only it.
    assert started[0] == (min_hits, 1)
    assert all(steady_ids[f] == -1 for f in range(1, min_hits))
    assert all(steady_ids[f] == 1 for f in range(min_hits, 41))
    if flicker_confirmed:
        assert all(i > 1 for i in flicker_ids)
    else:
        assert flicker_ids == [-1] * 20
        assert started == [(min_hits, 1)]


@pytest.mark.parametrize(
    ("buffer", "hidden", "same_id"),
    [(30, 10, True), (30, 30, True), (30, 31, False), (5, 5, True), (5, 6, False), (0, 1, False)],
)
def test_occlusion_within_buffer_keeps_id_and_track_ends_after_it(
    buffer: int, hidden: int, same_id: bool
) -> None:
    tracker = ByteTracker(TrackerConfig(track_buffer=buffer))
    seen = list(range(1, 11)) + list(range(11 + hidden, 21 + hidden))
    last = seen[-1]
    ids: dict[int, int] = {}
    ended: dict[int, list[int]] = {}
    for f in range(1, last + buffer + 10):
        fr = Frame()
        row = fr.add(box(100 + 2 * f, 100)) if f in seen else None
        u = step(tracker, fr, f)
        if row is not None:
            ids[f] = int(u.track_ids[row])
        if u.ended:
            ended[f] = u.ended
    first_id, later_id = ids[10], ids[last]
    assert first_id == 1
    assert (later_id == first_id) is same_id
    # Each id ends once, in the update where it has missed more than `buffer` frames.
    expected = {last + buffer + 1: [later_id]}
    if not same_id:
        expected[10 + buffer + 1] = [first_id]
    assert ended == expected


def test_ended_track_id_is_never_reused() -> None:
    tracker = ByteTracker(TrackerConfig(track_buffer=2))
    all_started: list[int] = []
    for f in range(1, 40):
        fr = Frame()
        if f % 8 < 3:  # appears for 3 frames, gone for 5: a new track every time
            fr.add(box(100, 100))
        all_started += step(tracker, fr, f).started
    assert all_started == list(range(1, len(all_started) + 1))
    assert len(all_started) == 5


# --- recovery, direction, scene motion, reported boxes -------------------------------------


@pytest.mark.parametrize(
    ("recovery_thresh", "same_id"), [(0.6, True), (None, False)], ids=["recovery", "without"]
)
def test_an_occluded_track_is_found_where_it_was_last_seen(
    recovery_thresh: float | None, same_id: bool
) -> None:
    # It walks right, stops behind a pillar for 6 frames and reappears where it stopped: its
    # prediction walked on, 56 px past a 40 px wide box, so only its last box still overlaps.
    tracker = ByteTracker(TrackerConfig(recovery_thresh=recovery_thresh))
    ids = set()
    for f in range(1, 36):
        fr = Frame()
        if f <= 20:
            fr.add(box(100 + 8 * f, 300))
        elif f >= 27:
            fr.add(box(100 + 8 * 20, 300))
        ids |= {int(i) for i in step(tracker, fr, f).track_ids if i > 0}
    assert (ids == {1}) is same_id


@pytest.mark.parametrize(
    ("dx", "dy", "angle"),
    [
        (20.0, 0.0, 0.0),  # ahead, as it walks
        (20.0, 20.0, 0.25),
        (0.0, 20.0, 0.5),  # sideways
        (-20.0, 0.0, 1.0),  # back where it came from
        (2.0, 0.0, 0.0),  # 2 px: below 0.03 box heights, jitter rather than a direction
    ],
)
def test_direction_cost_is_the_turn_from_the_track_velocity(
    dx: float, dy: float, angle: float
) -> None:
    tracker = ByteTracker()
    for f in range(1, 15):
        step(tracker, Frame([box(100 + 5 * f, 300)], [0.9], [0]), f)
    last = np.array([box(100 + 5 * 14 + dx, 300 + dy)])
    assert tracker._direction_cost(tracker._tracks, last)[0, 0] == pytest.approx(angle, abs=0.03)
    still = ByteTracker()
    for f in range(1, 15):
        step(still, Frame([box(100, 300)], [0.9], [0]), f)
    assert still._direction_cost(still._tracks, last) is None  # nothing moves: no term


def sway(amplitude: float, frames: int = 120, seed: int = 0) -> list[tuple[int, Frame]]:
    """Six people walking slowly, filmed by a camera that sways left and right."""
    rng = np.random.default_rng(seed)
    out = []
    for f in range(1, frames + 1):
        pan = amplitude * 3 * np.sin(f / 3)
        fr = Frame()
        for i in range(6):
            fr.add(box(100 + 160 * i + f + pan + rng.normal(0, 1.5), 300 + rng.normal(0, 1.5)))
        out.append((f, fr))
    return out


@pytest.mark.parametrize(
    ("amplitude", "moving"), [(0.0, False), (4.0, False), (12.0, True), (20.0, True)]
)
def test_scene_motion_rises_only_when_the_camera_moves(amplitude: float, moving: bool) -> None:
    tracker = ByteTracker()
    plain = ByteTracker(TrackerConfig(scene_motion_ref=None))
    same = True
    for f, fr in sway(amplitude):
        a, b = step(tracker, fr, f), step(plain, fr, f)
        same &= np.array_equal(a.boxes, b.boxes, equal_nan=True)
    level = tracker.to_state()["scene_motion"]
    assert (level > tracker.config.scene_motion_ref) is moving
    # Below the reference nothing changes: a fixed camera is tracked exactly as before.
    assert same is not moving


def test_reported_boxes_are_the_smoothed_estimate() -> None:
    rng = np.random.default_rng(2)
    tracker = ByteTracker()
    det_err, track_err = [], []
    for f in range(1, 61):
        truth = np.array(box(100 + 4 * f, 300))
        detection = truth + rng.normal(0, 4, 4)
        u = step(tracker, Frame([list(detection)], [0.9], [0]), f)
        if f == 1:
            assert u.track_ids[0] == -1 and np.isnan(u.boxes[0]).all()  # not confirmed yet
        elif f > 10:
            det_err.append(np.abs(detection - truth).mean())
            track_err.append(np.abs(u.boxes[0] - truth).mean())
    assert u.boxes.shape == (1, 4)
    assert np.mean(track_err) < np.mean(det_err)


# --- frame ids --------------------------------------------------------------------------------


@pytest.mark.parametrize("skipped", [1, 3, 6])
def test_dropped_frames_advance_the_prediction(skipped: int) -> None:
    # 15 px/frame with 40 px wide boxes: after 3+ missing frames a prediction that did not
    # advance would no longer overlap the detection at all.
    tracker = ByteTracker(TrackerConfig())
    frames = [*range(1, 11), *range(11 + skipped, 16 + skipped)]
    ids = []
    for f in frames:
        fr = Frame()
        row = fr.add(box(100 + 15 * f, 200))
        ids.append(int(step(tracker, fr, f).track_ids[row]))
    assert ids[1:] == [1] * (len(frames) - 1)


def test_gap_longer_than_buffer_ends_tracks_before_matching() -> None:
    tracker = ByteTracker(TrackerConfig(track_buffer=5))
    for f in range(1, 6):
        fr = Frame()
        fr.add(box(100, 100))
        step(tracker, fr, f)
    fr = Frame()
    row = fr.add(box(100, 100))
    u = step(tracker, fr, 5 + 7)  # 6 frames missed > buffer
    assert u.ended == [1]
    assert u.track_ids[row] == -1  # a fresh tentative track, not the ended one
    fr = Frame()
    row = fr.add(box(100, 100))
    assert step(tracker, fr, 13).track_ids[row] == 2


@pytest.mark.parametrize("stale_id", [10, 7, 1, 0, -5], ids=lambda f: f"frame-{f}")
def test_stale_frame_id_is_reported_and_changes_nothing(stale_id: int) -> None:
    stream = random_stream(seed=3, frames=30)
    head = [(f, fr) for f, fr in stream if f <= 10]
    tail = [(f, fr) for f, fr in stream if f > 10]
    assert head[-1][0] == 10
    tracker, reference = ByteTracker(), ByteTracker()
    for f, fr in head:
        step(tracker, fr, f)
        step(reference, fr, f)
    before = json.dumps(tracker.to_state())

    u = step(tracker, head[-1][1], stale_id)
    assert u.stale
    assert u.frame_id == stale_id
    assert (u.track_ids == -1).all() and len(u.track_ids) == len(head[-1][1].boxes)
    assert u.started == [] and u.ended == []
    assert json.dumps(tracker.to_state()) == before
    for f, fr in tail:
        got, want = step(tracker, fr, f), step(reference, fr, f)
        assert np.array_equal(got.track_ids, want.track_ids)
        assert (got.started, got.ended, got.stale) == (want.started, want.ended, want.stale)


# --- snapshot / restore -----------------------------------------------------------------------


# --- coasting -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("coast_frames", "hidden", "coasted"), [(3, 2, 2), (3, 6, 3), (1, 6, 1), (0, 6, 0)]
)
def test_a_missed_track_is_reported_at_its_prediction_for_coast_frames(
    coast_frames: int, hidden: int, coasted: int
) -> None:
    # It walks right at 4 px a frame and the detector misses it for `hidden` frames.
    tracker = ByteTracker(TrackerConfig(coast_frames=coast_frames))
    reported: dict[int, tuple[list[int], np.ndarray]] = {}
    ids = set()
    for f in range(1, 21 + hidden):
        fr = Frame()
        if not 11 <= f < 11 + hidden:
            fr.add(box(100 + 4 * f, 300))
        u = step(tracker, fr, f)
        ids |= {int(i) for i in u.track_ids if i > 0}
        if len(u.coasting_ids):
            reported[f] = (u.coasting_ids.tolist(), u.coasting_boxes)
    assert sorted(reported) == list(range(11, 11 + coasted))
    for f, (coasting, boxes) in reported.items():
        assert coasting == [1]
        np.testing.assert_allclose(boxes[0], box(100 + 4 * f, 300), atol=3)  # where it went
    assert ids == {1}  # and it is re-found under its id


def test_a_tentative_track_never_coasts() -> None:
    tracker = ByteTracker(TrackerConfig(min_hits=3))
    for f, seen in enumerate([True, True, False, False], start=1):
        fr = Frame()
        if seen:
            fr.add(box(100, 300))
        assert step(tracker, fr, f).coasting_ids.tolist() == []


@pytest.mark.parametrize(("amplitude", "coasts"), [(0.0, True), (4.0, True), (20.0, False)])
def test_nothing_coasts_while_the_camera_moves(amplitude: float, coasts: bool) -> None:
    # Late in the sway the detector misses one person for two frames; a swaying camera's
    # prediction would put the box where the person is not.
    tracker = ByteTracker()
    coasted = []
    for f, fr in sway(amplitude):
        if f in (100, 101):
            fr = Frame(fr.boxes[1:], fr.scores[1:], fr.classes[1:])
            coasted += step(tracker, fr, f).coasting_ids.tolist()
        else:
            step(tracker, fr, f)
    assert coasted == ([1, 1] if coasts else [])
    assert (tracker.to_state()["scene_motion"] > tracker.config.scene_motion_ref) is not coasts


@pytest.mark.parametrize("split", [1, 2, 37, 100])
@pytest.mark.parametrize(
    "config",
    [
        TrackerConfig(),
        TrackerConfig(min_hits=3, class_aware=False, track_buffer=10),
        TrackerConfig(min_hits=1, duplicate_iou=0.85, fuse_score=False),
        # A reference this low makes the jitter count as camera motion: the widened noise
        # and gates and the skipped recovery stage then run, and their level is restored.
        TrackerConfig(scene_motion_ref=0.005),
        TrackerConfig(recovery_thresh=None, direction_weight=0.0, scene_motion_ref=None),
    ],
    ids=[
        "default",
        "hits3-agnostic-buffer10",
        "hits1-dedup-nofuse",
        "moving-scene",
        "bytetrack-stages-only",
    ],
)
def test_restored_tracker_continues_exactly(split: int, config: TrackerConfig) -> None:
    stream = random_stream(seed=11, frames=160)
    whole = ByteTracker(config)
    expected = [step(whole, fr, f) for f, fr in stream]

    first = ByteTracker(config)
    got = [step(first, fr, f) for f, fr in stream[:split]]
    wire = json.dumps(first.to_state())  # as it travels through Redis
    restored = ByteTracker.from_state(json.loads(wire), config)
    got += [step(restored, fr, f) for f, fr in stream[split:]]

    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        assert g.frame_id == e.frame_id
        assert np.array_equal(g.track_ids, e.track_ids)
        assert np.array_equal(g.boxes, e.boxes, equal_nan=True)
        assert (g.started, g.ended, g.stale) == (e.started, e.ended, e.stale)
        assert np.array_equal(g.coasting_ids, e.coasting_ids)
        assert np.array_equal(g.coasting_boxes, e.coasting_boxes)
    assert restored.to_state() == whole.to_state()
    assert any(u.ended for u in expected) and max(max(u.started, default=0) for u in got) > 5
    assert any(len(u.coasting_ids) for u in expected) or config.scene_motion_ref == 0.005


def test_state_is_plain_json_with_version() -> None:
    tracker = ByteTracker()
    assert tracker.to_state() == {
        "version": STATE_VERSION,
        "last_frame_id": None,
        "next_track_id": 1,
        "scene_motion": 0.0,
        "tracks": [],
    }
    for f, fr in random_stream(seed=5, frames=20):
        step(tracker, fr, f)
    state = tracker.to_state()

    def plain(value: object) -> bool:
        if isinstance(value, dict):
            return all(isinstance(k, str) and plain(v) for k, v in value.items())
        if isinstance(value, list):
            return all(plain(v) for v in value)
        return value is None or type(value) in (int, float, str, bool)

    assert plain(state)
    assert json.loads(json.dumps(state)) == state
    assert state["tracks"]


def test_a_version_1_snapshot_still_loads_and_keeps_its_ids() -> None:
    # What a tracker of the previous release saved: no last boxes, no scene motion.
    stream = random_stream(seed=3, frames=80)
    old = ByteTracker()
    for f, fr in stream[:40]:
        step(old, fr, f)
    state = json.loads(json.dumps(old.to_state()))
    state["version"] = 1
    del state["scene_motion"]
    for track in state["tracks"]:
        del track["last_box"]
    restored = ByteTracker.from_state(state)
    shown_before = {t["track_id"] for t in state["tracks"] if t["track_id"] > 0}
    later = [step(restored, fr, f) for f, fr in stream[40:]]
    shown_after = {int(i) for u in later for i in u.track_ids if i > 0}
    started = [i for u in later for i in u.started]
    assert shown_before & shown_after  # tracks continue under their ids
    assert all(i >= state["next_track_id"] for i in started)  # and no id is handed out twice
    assert restored.to_state()["version"] == STATE_VERSION


def test_restoring_an_unknown_version_fails() -> None:
    state = ByteTracker().to_state()
    state["version"] = STATE_VERSION + 1
    with pytest.raises(ValueError, match="version"):
        ByteTracker.from_state(state, TrackerConfig())


# --- classes ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("class_aware", "keeps_id"), [(True, False), (False, True)])
def test_detection_of_another_class_takes_over_a_track_only_if_class_agnostic(
    class_aware: bool, keeps_id: bool
) -> None:
    tracker = ByteTracker(TrackerConfig(class_aware=class_aware))
    ids = []
    for f in range(1, 11):
        fr = Frame()
        row = fr.add(box(100 + 2 * f, 100), cls=0 if f <= 5 else 1)
        ids.append(int(step(tracker, fr, f).track_ids[row]))
    assert ids[1:5] == [1] * 4
    if keeps_id:
        assert ids[5:] == [1] * 5
    else:
        assert ids[5] == -1 and ids[6:] == [2] * 4


def test_overlapping_objects_of_different_classes_never_swap() -> None:
    # A person and the bicycle they ride: nearly the same box, moving together, with the
    # boxes' order in the detector output shuffled every frame.
    tracker = ByteTracker(TrackerConfig())
    rng = np.random.default_rng(0)
    by_class: dict[int, set[int]] = {0: set(), 1: set()}
    for f in range(1, 41):
        fr = Frame()
        order = rng.permutation(2)
        rows = {}
        for cls in order:
            jitter = rng.normal(0, 3, 2)
            rows[int(cls)] = fr.add(box(100 + 3 * f + jitter[0], 200 + jitter[1]), cls=int(cls))
        u = step(tracker, fr, f)
        for cls, row in rows.items():
            by_class[cls].add(int(u.track_ids[row]))
    assert by_class[0] - {-1} == {1} or by_class[0] - {-1} == {2}
    assert len(by_class[1] - {-1}) == 1 and by_class[0].isdisjoint(by_class[1] - {-1})


# --- inputs -----------------------------------------------------------------------------------


def test_invalid_rows_are_ignored_and_shapes_checked() -> None:
    tracker = ByteTracker()
    boxes = np.array(
        [box(100, 100), [np.nan, 0, 10, 10], [50, 50, 50, 80], box(300, 100), box(500, 100)]
    )
    scores = np.array([0.9, 0.9, 0.9, 0.05, 0.9])
    classes = np.zeros(5, dtype=np.int64)
    for f in (1, 2):
        u = tracker.update(boxes, scores, classes, f)
    assert u.track_ids.tolist() == [1, -1, -1, -1, 2]
    empty = tracker.update(np.zeros((0, 4)), np.zeros(0), np.zeros(0, dtype=np.int64), 3)
    assert empty.track_ids.shape == (0,)
    with pytest.raises(ValueError, match="scores"):
        tracker.update(boxes, scores[:3], classes, 4)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"low_thresh": 0.6, "high_thresh": 0.5},
        {"high_thresh": 0.7, "new_track_thresh": 0.6},
        {"match_thresh": 1.5},
        {"min_hits": 0},
        {"track_buffer": -1},
        {"duplicate_iou": 0.0},
        {"std_weight_position": 0.0},
        {"recovery_thresh": 1.5},
        {"direction_weight": -0.1},
        {"scene_motion_ref": 0.0},
        {"scene_motion_rate": 1.5},
        {"scene_motion_max": 0.5},
        {"coast_frames": -1},
    ],
)
def test_config_rejects_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        TrackerConfig(**kwargs)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), split=st.integers(1, 60))
def test_invariants_on_random_streams(seed: int, split: int) -> None:
    stream = random_stream(seed, frames=60, objects=6)
    tracker = ByteTracker()
    started: list[int] = []
    ended: set[int] = set()
    for k, (f, fr) in enumerate(stream):
        if k == split:
            tracker = ByteTracker.from_state(json.loads(json.dumps(tracker.to_state())))
        u = step(tracker, fr, f)
        shown = u.track_ids[u.track_ids >= 0].tolist()
        assert len(shown) == len(set(shown))  # one detection per track per frame
        assert not ended & set(shown)  # an ended id never comes back
        assert not ended & set(u.ended)  # and ends once
        assert set(u.started) <= set(shown)  # a started id is shown in its first frame
        coasting = u.coasting_ids.tolist()
        assert not set(coasting) & (set(shown) | ended | set(u.ended))  # missed, not gone
        assert coasting == sorted(coasting) and set(coasting) <= set(started)
        started += u.started
        ended |= set(u.ended)
        assert set(shown) <= set(started)
    assert started == list(range(1, len(started) + 1))
    assert ended <= set(started)
