"""The capture handler against a real Redis (127.0.0.1:6379), connected as the capture service's
own ACL user where that Redis allows creating one: limits shared by replicas, near-duplicates,
privacy masks, expired pixels, drift bursts, track churn and hostile input. The dataset is a
stub with the real one's two methods, except in the last test."""

from __future__ import annotations

import secrets
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pytest
import redis
from opentelemetry import trace

from services.capture.captured import Captured
from services.capture.handler import CaptureHandler, DatasetWriter, stats_key, to_boxes
from services.capture.loader import parse_strategies
from services.capture.settings import CaptureSettings
from services.core import redis_acl
from services.core.claimcheck import RedisStore, connect, open_store
from services.core.errors import PoisonMessage, TransientError
from services.core.handler import Incoming
from services.core.payload_keys import frame_key
from services.core.settings import ClaimCheckSettings, RedisSettings
from steadyeye.v1.common_pb2 import FrameRef
from steadyeye.v1.detections_pb2 import Detection, Detections, ModelRef
from steadyeye.v1.drift_pb2 import DriftEvent, DriftState
from steadyeye.v1.tracks_pb2 import Track, Tracks, TrackState

CLASSES = ("person", "bicycle", "car", "dog")
T0 = 1_800_000_000.0  # a capture time at the start of a minute (and hour, and day)
W, H = 160, 120
PERSON = ("person", 0.9, (10, 10, 60, 100))
UNSURE_DOG = ("dog", 0.2, (100, 20, 150, 80))  # a candidate: below the serving threshold


@dataclass
class StubDataset:
    """services.capture.dataset.Dataset's two methods, keeping what it is given."""

    added: list[Captured] = field(default_factory=list)
    flushes: int = 0
    fail: Exception | None = None

    def add(self, captured: Captured) -> str:
        if self.fail is not None:
            raise self.fail
        self.added.append(captured)
        return f"images/{captured.camera_id}/{captured.frame_id}-{captured.reason}.jpg"

    def flush(self) -> None:
        self.flushes += 1


# ---- fixtures ----------------------------------------------------------------------------------


@pytest.fixture
def admin(local_redis: redis.Redis) -> redis.Redis:
    return local_redis


@pytest.fixture
def prefix(admin: redis.Redis) -> Iterator[str]:
    """This test's own Redis keys; removed afterwards."""
    prefix = f"steadyeye:capture:test-{uuid.uuid4().hex[:8]}"
    yield prefix
    keys = list(admin.scan_iter(f"{prefix}:*", count=1000))
    if keys:
        admin.delete(*keys)


@pytest.fixture
def camera(admin: redis.Redis) -> Iterator[str]:
    """A camera of this test's own; its frames' pixels are removed afterwards."""
    camera_id = f"cap-{uuid.uuid4().hex[:8]}"
    yield camera_id
    keys = list(admin.scan_iter(f"steadyeye:frame:{camera_id}*", count=1000))
    if keys:
        admin.delete(*keys)


@pytest.fixture
def client(admin: redis.Redis) -> Iterator[redis.Redis]:
    """Connected as a user with exactly capture's ACL rules: a command the handler sends that
    the rules do not allow fails here with NOPERM."""
    name, password = f"steadyeye-capture-test-{uuid.uuid4().hex[:8]}", secrets.token_hex(16)
    try:
        admin.execute_command("ACL", "SETUSER", name, *redis_acl.rules("capture"), f">{password}")
    except redis.ResponseError as exc:
        pytest.skip(f"this Redis would not let the test create an ACL user: {exc}")
    user = connect(RedisSettings(username=name, password=password))  # as the service connects
    yield user
    user.close()
    admin.execute_command("ACL", "DELUSER", name)


@pytest.fixture
def pixels(admin: redis.Redis) -> RedisStore:
    """Where the test parks frames' pixels, as ingest would."""
    return RedisStore(admin, ClaimCheckSettings(threshold_bytes=0, ttl_s=60))


def handler_for(
    strategies: str,
    client: redis.Redis,
    prefix: str,
    dataset: DatasetWriter | None = None,
    clock=None,
    **settings,
) -> CaptureHandler:
    parsed = parse_strategies(strategies)
    claim_check = ClaimCheckSettings(threshold_bytes=0, ttl_s=60)
    return CaptureHandler(
        parsed,
        client,
        open_store(claim_check, lambda: client),
        dataset if dataset is not None else StubDataset(),
        CLASSES,
        CaptureSettings(strategies_file=Path("unused"), dataset_url="unused", **settings),
        prefix=prefix,
        **({"clock": clock} if clock else {}),
    )


def handle(handler: CaptureHandler, *messages) -> list:
    """As the core loop does: one batch, one result per message (an exception or outputs)."""
    return handler.handle_batch([Incoming(m, trace.INVALID_SPAN) for m in messages])


def ok(results: list) -> None:
    errors = [r for r in results if isinstance(r, Exception)]
    assert not errors, errors


def detection(class_name: str, score: float, box) -> Detection:
    d = Detection(class_name=class_name, class_id=CLASSES.index(class_name), score=score)
    d.box.x1, d.box.y1, d.box.x2, d.box.y2 = box
    return d


def detections(
    camera_id: str,
    frame_id: int,
    served=(PERSON,),
    candidates=(),
    at: float | None = None,
    size=(W, H),
) -> Detections:
    ref = FrameRef(camera_id=camera_id, frame_id=frame_id, width=size[0], height=size[1])
    ref.capture_time.FromNanoseconds(int((T0 + frame_id * 0.1 if at is None else at) * 1e9))
    return Detections(
        ref=ref,
        model=ModelRef(name="yolox_nano", version="1"),
        detections=[detection(*d) for d in served],
        candidates=[detection(*d) for d in candidates],
    )


def noise(seed: int, size=(W, H)) -> np.ndarray:
    """A distinct image per seed: no two are near-duplicates."""
    return np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)


def park(store: RedisStore, camera_id: str, frame_id: int, image: np.ndarray | bytes) -> None:
    data = image if isinstance(image, bytes) else image.tobytes()
    store.put(frame_key(camera_id, frame_id), data)


def stats(admin: redis.Redis, prefix: str) -> dict[str, int]:
    return {k.decode(): int(v) for k, v in admin.hgetall(stats_key(prefix)).items()}


LIMITED = "defaults: {limits: {camera: {minute: 100}}}\n"
UNCERTAIN = LIMITED + "strategies:\n  - {name: unsure, type: uncertain, band: [0.15, 0.35]}\n"


# ---- capturing ---------------------------------------------------------------------------------


def test_a_chosen_frame_is_captured_with_what_the_model_saw(client, admin, prefix, camera, pixels):
    dataset = StubDataset()
    handler = handler_for(UNCERTAIN, client, prefix, dataset)
    image = noise(1)
    park(pixels, camera, 5, image)
    ok(handle(handler, detections(camera, 5, served=[PERSON], candidates=[UNSURE_DOG])))
    handler.tick()  # counts reach Redis about once a second
    [captured] = dataset.added
    assert (captured.camera_id, captured.frame_id) == (camera, 5)
    assert (captured.reason, captured.strategy) == ("unsure", "uncertain")
    assert (captured.model_name, captured.model_version) == ("yolox_nano", "1")
    assert captured.capture_time.timestamp() == pytest.approx(T0 + 0.5)
    assert captured.capture_time.utcoffset().total_seconds() == 0
    assert (captured.width, captured.height, captured.class_names) == (W, H, CLASSES)
    assert [(b.class_name, b.x1, b.y2) for b in captured.boxes] == [("person", 10, 100)]
    assert [(b.class_name, b.score) for b in captured.candidates] == [("dog", pytest.approx(0.2))]
    assert captured.extra == {"band": "[0.15, 0.35)", "served_in_band": "0",
                              "candidates_in_band": "1"}  # fmt: skip
    decoded = cv2.imdecode(np.frombuffer(captured.jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == image.shape
    assert captured.drift_event_id == ""
    assert stats(admin, prefix) == {"captured": 1, "captured:unsure": 1}


def test_uncertain_finds_frames_the_serving_threshold_alone_misses(client, prefix, camera, pixels):
    """The only unsure box is a candidate, below the serving threshold: downstream never saw
    it, and a strategy on served detections could not have chosen the frame."""
    dataset = StubDataset()
    handler = handler_for(UNCERTAIN, client, prefix, dataset)
    for frame_id in range(3):
        park(pixels, camera, frame_id, noise(frame_id))
    sure = detections(camera, 0, served=[PERSON])
    candidate_only = detections(camera, 1, served=[PERSON], candidates=[UNSURE_DOG])
    nothing = detections(camera, 2, served=[])
    ok(handle(handler, sure, candidate_only, nothing))
    assert [c.frame_id for c in dataset.added] == [1]
    assert all(d.score >= 0.25 for d in candidate_only.detections)


def test_the_first_matching_strategy_names_the_reason(client, prefix, camera, pixels):
    strategies = LIMITED + (
        "strategies:\n"
        "  - {name: dogs, type: classes, classes: [dog]}\n"
        "  - {name: unsure, type: uncertain}\n"
        "  - {name: all, type: random, percent: 100}\n"
    )
    dataset = StubDataset()
    handler = handler_for(strategies, client, prefix, dataset)
    for frame_id in range(3):
        park(pixels, camera, frame_id, noise(frame_id))
    ok(handle(
        handler,
        detections(camera, 0, served=[("dog", 0.3, (0, 0, 50, 50))]),  # a dog, and unsure
        detections(camera, 1, served=[("person", 0.3, (0, 0, 50, 50))]),  # unsure
        detections(camera, 2, served=[PERSON]),
    ))  # fmt: skip
    assert [c.reason for c in dataset.added] == ["dogs", "unsure", "all"]


def test_a_frame_whose_pixels_expired_is_counted_not_an_error(client, admin, prefix, camera):
    dataset = StubDataset()
    handler = handler_for(UNCERTAIN, client, prefix, dataset)
    results = handle(handler, detections(camera, 9, candidates=[UNSURE_DOG]))  # nothing parked
    assert results == [[]]
    handler.tick()
    assert dataset.added == []
    assert stats(admin, prefix) == {"expired": 1, "expired:unsure": 1}


def test_frames_no_strategy_wants_are_never_read(client, admin, prefix, camera, pixels):
    handler = handler_for(UNCERTAIN, client, prefix)
    assert handle(handler, detections(camera, 1, served=[PERSON])) == [[]]
    handler.tick()
    assert stats(admin, prefix) == {}  # not even counted as expired: nothing was looked for


# ---- limits ------------------------------------------------------------------------------------


def every_frame(limits: str) -> str:
    return f"strategies:\n  - {{name: all, type: random, percent: 100, limits: {limits}}}\n"


def test_limits_count_per_calendar_window_of_the_capture_time(client, prefix, camera, pixels):
    dataset = StubDataset()
    handler = handler_for(every_frame("{camera: {minute: 2}}"), client, prefix, dataset)
    times = [T0 + 1, T0 + 2, T0 + 3, T0 + 59, T0 + 60, T0 + 61, T0 + 62]
    for frame_id, at in enumerate(times):
        park(pixels, camera, frame_id, noise(frame_id))
        ok(handle(handler, detections(camera, frame_id, at=at)))
    assert [c.frame_id for c in dataset.added] == [0, 1, 4, 5]


def test_a_strategy_at_its_limit_passes_the_frame_to_the_next(client, prefix, camera, pixels):
    strategies = (
        "strategies:\n"
        "  - {name: unsure, type: uncertain, limits: {camera: {minute: 1}}}\n"
        "  - {name: all, type: random, percent: 100, limits: {camera: {minute: 5}}}\n"
    )
    dataset = StubDataset()
    handler = handler_for(strategies, client, prefix, dataset)
    for frame_id in range(3):
        park(pixels, camera, frame_id, noise(frame_id))
        ok(handle(handler, detections(camera, frame_id, candidates=[UNSURE_DOG])))
    assert [c.reason for c in dataset.added] == ["unsure", "all", "all"]


def test_a_frame_over_a_limit_is_not_read_at_all(client, admin, prefix, camera, pixels):
    handler = handler_for(every_frame("{camera: {hour: 1}}"), client, prefix)
    park(pixels, camera, 0, noise(0))
    ok(handle(handler, detections(camera, 0), detections(camera, 1)))  # frame 1 has no pixels
    handler.tick()
    assert stats(admin, prefix) == {"captured": 1, "captured:all": 1, "limited": 1,
                                    "limited:all": 1}  # fmt: skip


def test_two_replicas_never_exceed_a_limit_together(client, prefix, pixels, admin):
    """Two handlers (replicas) sharing one Redis, racing on the same cameras' frames."""
    cameras = [f"cap-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    limits = "{camera: {minute: 4}, overall: {hour: 6}}"
    datasets = [StubDataset(), StubDataset()]
    replicas = [
        handler_for(every_frame(limits), redis.Redis(connection_pool=client.connection_pool),
                    prefix, dataset)
        for dataset in datasets
    ]  # fmt: skip
    frames = [(c, i) for i in range(30) for c in cameras]
    for camera_id, frame_id in frames:
        park(pixels, camera_id, frame_id, noise(hash((camera_id, frame_id)) % 2**32))

    def run(replica: CaptureHandler, part: int) -> None:
        for camera_id, frame_id in frames[part::2] + frames[1 - part :: 2]:  # both see all
            ok(handle(replica, detections(camera_id, frame_id)))

    threads = [threading.Thread(target=run, args=(r, i)) for i, r in enumerate(replicas)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    captured = [c for d in datasets for c in d.added]
    per_camera = {c: sum(1 for x in captured if x.camera_id == c) for c in cameras}
    assert all(n <= 4 for n in per_camera.values()), per_camera
    assert len(captured) == 6, per_camera  # the overall limit, and no frame lost to a race
    for camera_id in cameras:
        for key in admin.scan_iter(f"steadyeye:frame:{camera_id}*"):
            admin.delete(key)


def test_a_capture_the_dataset_could_not_take_gives_its_slot_back(client, prefix, camera, pixels):
    dataset = StubDataset(fail=OSError("disk full"))
    handler = handler_for(every_frame("{camera: {minute: 1}}"), client, prefix, dataset)
    park(pixels, camera, 0, noise(0))
    [result] = handle(handler, detections(camera, 0))
    assert isinstance(result, TransientError)  # the loop rewinds and retries it
    dataset.fail = None
    ok(handle(handler, detections(camera, 0)))
    assert [c.frame_id for c in dataset.added] == [0]


def test_a_frame_the_dataset_refuses_is_dead_lettered(client, prefix, camera, pixels):
    dataset = StubDataset(fail=ValueError("box of class 'zebra' not in the dataset"))
    handler = handler_for(every_frame("{camera: {minute: 1}}"), client, prefix, dataset)
    park(pixels, camera, 0, noise(0))
    [result] = handle(handler, detections(camera, 0))
    assert isinstance(result, PoisonMessage) and "zebra" in str(result)


# ---- near-duplicates ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clip(vtest_avi: Path) -> dict[int, np.ndarray]:
    video = cv2.VideoCapture(str(vtest_avi))
    frames, index = {}, 0
    while index <= 400:
        ok_, image = video.read()
        assert ok_
        if index in (100, 101, 102, 400):
            frames[index] = image
        index += 1
    return frames


def test_near_duplicates_are_suppressed_unless_the_reason_differs(
    client, admin, prefix, camera, pixels, clip
):
    strategies = LIMITED + (
        "strategies:\n"
        "  - {name: unsure, type: uncertain}\n"
        "  - {name: all, type: random, percent: 100}\n"
    )
    dataset = StubDataset()
    handler = handler_for(strategies, client, prefix, dataset)
    height, width = clip[100].shape[:2]
    for frame_id, image in clip.items():
        park(pixels, camera, frame_id, image)

    def frame(frame_id: int, unsure: bool) -> Detections:
        return detections(camera, frame_id, served=[PERSON], size=(width, height),
                          candidates=[UNSURE_DOG] if unsure else [])  # fmt: skip

    ok(handle(handler, frame(100, True)))
    ok(handle(handler, frame(101, True)))  # the next frame: a near-duplicate, same reason
    ok(handle(handler, frame(102, False)))  # also near, but taken for another reason
    ok(handle(handler, frame(400, True)))  # 30 s later: another scene
    ok(handle(handler, frame(100, True)))  # redelivered: the same image
    handler.tick()
    assert [(c.frame_id, c.reason) for c in dataset.added] == [
        (100, "unsure"), (102, "all"), (400, "unsure")
    ]  # fmt: skip
    assert stats(admin, prefix)["duplicate"] == 2


def test_replicas_agree_on_near_duplicates(client, prefix, camera, pixels, clip):
    datasets = [StubDataset(), StubDataset()]
    replicas = [handler_for(UNCERTAIN, client, prefix, d) for d in datasets]
    height, width = clip[100].shape[:2]
    for frame_id in (100, 101):
        park(pixels, camera, frame_id, clip[frame_id])
        message = detections(camera, frame_id, size=(width, height), candidates=[UNSURE_DOG])
        ok(handle(replicas[frame_id % 2], message))
    assert [len(d.added) for d in datasets] == [1, 0]


# ---- privacy -----------------------------------------------------------------------------------


def test_privacy_regions_are_blacked_out_and_boxes_inside_them_dropped(
    client, prefix, camera, pixels
):
    strategies = every_frame("{camera: {minute: 5}}") + (
        f"privacy:\n  {camera}:\n    - [0.0, 0.0, 0.5, 0.5]\n"  # the top-left quarter
    )
    dataset = StubDataset()
    handler = handler_for(strategies, client, prefix, dataset)
    image = np.full((H, W, 3), 200, np.uint8)
    park(pixels, camera, 0, image)
    served = [
        ("person", 0.9, (10, 10, 50, 50)),  # inside: dropped
        ("car", 0.9, (100, 70, 150, 110)),  # outside: kept
        ("dog", 0.9, (60, 10, 110, 50)),  # 40% inside: kept
    ]
    ok(handle(handler, detections(camera, 0, served=served)))
    [captured] = dataset.added
    decoded = cv2.imdecode(np.frombuffer(captured.jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert decoded[: H // 2 - 2, : W // 2 - 2].max() <= 8  # black, but for JPEG's ringing
    assert abs(float(decoded[H // 2 + 4 :, :].mean()) - 200) < 3
    assert abs(float(decoded[:, W // 2 + 4 :].mean()) - 200) < 3
    assert [b.class_name for b in captured.boxes] == ["car", "dog"]


def test_other_cameras_are_not_masked(client, prefix, camera, pixels):
    strategies = every_frame("{camera: {minute: 5}}") + "privacy:\n  elsewhere: [[0, 0, 1, 1]]\n"
    dataset = StubDataset()
    handler = handler_for(strategies, client, prefix, dataset)
    park(pixels, camera, 0, np.full((H, W, 3), 200, np.uint8))
    ok(handle(handler, detections(camera, 0)))
    decoded = cv2.imdecode(np.frombuffer(dataset.added[0].jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert abs(float(decoded.mean()) - 200) < 3


# ---- drift bursts ------------------------------------------------------------------------------


def drift_event(camera_id: str, frame_id: int, event_id: str, started: bool) -> DriftEvent:
    ref = FrameRef(camera_id=camera_id, frame_id=frame_id, width=W, height=H)
    ref.capture_time.FromNanoseconds(int((T0 + frame_id * 0.1) * 1e9))
    state = DriftState.DRIFT_STATE_STARTED if started else DriftState.DRIFT_STATE_ENDED
    return DriftEvent(event_id=event_id, state=state, ref=ref, episode_start_frame_id=frame_id)


def test_a_drift_episode_takes_a_burst_that_every_replica_agrees_on(client, prefix, camera, pixels):
    strategies = LIMITED + "strategies:\n  - {name: burst, type: drift, every: 3, max_frames: 3}\n"
    datasets = [StubDataset(), StubDataset()]
    one, other = (handler_for(strategies, client, prefix, d) for d in datasets)
    for frame_id in range(30):
        park(pixels, camera, frame_id, noise(frame_id))
    ok(handle(one, *(detections(camera, i) for i in range(0, 10))))  # before the episode
    ok(handle(one, drift_event(camera, 10, "ep-1", started=True)))
    ok(handle(other, *(detections(camera, i) for i in range(10, 20))))  # another replica
    ok(handle(one, drift_event(camera, 20, "ep-1", started=False)))
    ok(handle(one, drift_event(camera, 10, "ep-1", started=True)))  # a replay: stays ended
    ok(handle(other, *(detections(camera, i) for i in range(20, 30))))
    assert datasets[0].added == []
    assert [c.frame_id for c in datasets[1].added] == [10, 13, 16]
    assert {c.drift_event_id for c in datasets[1].added} == {"ep-1"}


def test_frames_captured_during_an_episode_name_it(client, prefix, camera, pixels):
    dataset = StubDataset()
    handler = handler_for(UNCERTAIN, client, prefix, dataset)
    park(pixels, camera, 5, noise(5))
    ok(handle(handler, drift_event(camera, 3, "ep-7", started=True),
              detections(camera, 5, candidates=[UNSURE_DOG])))  # fmt: skip
    assert dataset.added[0].drift_event_id == "ep-7"


# ---- track churn -------------------------------------------------------------------------------


def tracks(camera_id: str, frame_id: int, *items: tuple[int, int]) -> Tracks:
    message = Tracks(ref=FrameRef(camera_id=camera_id, frame_id=frame_id, width=W, height=H))
    for track_id, state in items:
        d = detection(*PERSON)
        message.tracks.append(Track(track_id=track_id, state=state, detection=d))
    return message


STARTED, UPDATED, ENDED = (
    TrackState.TRACK_STATE_STARTED,
    TrackState.TRACK_STATE_UPDATED,
    TrackState.TRACK_STATE_ENDED,
)
CHURN = LIMITED + (
    "strategies:\n"
    "  - {name: dogs, type: classes, classes: [dog]}\n"
    "  - {name: churn, type: track_churn, max_track_frames: 4, starts_above: 2}\n"
)


def test_a_short_lived_track_gets_its_last_frame_captured(client, prefix, camera, pixels):
    dataset = StubDataset()
    handler = handler_for(CHURN, client, prefix, dataset)
    for frame_id in range(10, 50):
        park(pixels, camera, frame_id, noise(frame_id))
        ok(handle(handler, detections(camera, frame_id)))
    ok(handle(handler, tracks(camera, 10, (1, STARTED), (2, STARTED))))
    ok(handle(handler, tracks(camera, 11, (1, UPDATED), (2, UPDATED))))
    ok(handle(handler, tracks(camera, 12, (2, UPDATED))))
    ok(handle(handler, *(tracks(camera, i, (2, UPDATED)) for i in range(13, 40))))
    ok(handle(handler, tracks(camera, 43, (1, ENDED))))  # lived 2 frames: 10 and 11
    assert [(c.frame_id, c.reason, c.strategy) for c in dataset.added] == [
        (11, "churn", "track_churn")
    ]  # fmt: skip
    assert dataset.added[0].extra == {"short_track": "1", "lived_frames": "2"}


def test_churn_takes_only_frames_no_other_strategy_took(client, prefix, camera, pixels):
    dataset = StubDataset()
    handler = handler_for(CHURN, client, prefix, dataset)
    for frame_id in (1, 2):
        park(pixels, camera, frame_id, noise(frame_id))
    dog = [("dog", 0.9, (0, 0, 40, 40))]
    ok(handle(handler, detections(camera, 1, served=dog), detections(camera, 2)))
    starts = [(i, STARTED) for i in range(3)]
    ok(handle(handler, tracks(camera, 1, *starts), tracks(camera, 2, *starts)))
    assert [(c.frame_id, c.reason) for c in dataset.added] == [(1, "dogs"), (2, "churn")]


def test_churn_seen_before_its_frames_detections_waits_for_them(client, prefix, camera, pixels):
    dataset = StubDataset()
    handler = handler_for(CHURN, client, prefix, dataset)
    park(pixels, camera, 7, noise(7))
    ok(handle(handler, detections(camera, 6)))
    ok(handle(handler, tracks(camera, 7, *((i, STARTED) for i in range(3)))))
    assert dataset.added == []
    ok(handle(handler, detections(camera, 7)))
    assert [(c.frame_id, c.extra) for c in dataset.added] == [(7, {"track_starts": "3"})]


# ---- the loop's hooks --------------------------------------------------------------------------


def test_the_dataset_is_flushed_about_every_interval_and_at_close(client, prefix):
    now = [0.0]
    dataset = StubDataset()
    handler = handler_for(UNCERTAIN, client, prefix, dataset, clock=lambda: now[0],
                          flush_interval_s=60)  # fmt: skip
    for now[0] in (1.0, 30.0, 59.0):
        handler.tick()
    assert dataset.flushes == 0
    for now[0] in (60.0, 61.0, 119.0):
        handler.tick()
    assert dataset.flushes == 1
    handler.close()
    assert dataset.flushes == 2


def test_a_failed_flush_does_not_stop_capture(client, prefix, camera, pixels):
    class FailingFlush(StubDataset):
        def flush(self) -> None:
            raise ValueError("a record of another replica is unreadable")

    dataset = FailingFlush()
    now = [0.0]
    handler = handler_for(UNCERTAIN, client, prefix, dataset, clock=lambda: now[0])
    now[0] = 3600.0
    assert handler.tick() == []  # logged; the day files are rebuilt at the next flush
    park(pixels, camera, 0, noise(0))
    ok(handle(handler, detections(camera, 0, candidates=[UNSURE_DOG])))
    handler.close()
    assert len(dataset.added) == 1


# ---- hostile input -----------------------------------------------------------------------------


def jpeg(image: np.ndarray) -> bytes:
    return cv2.imencode(".jpg", image)[1].tobytes()


def bomb() -> bytes:
    """A JPEG whose header declares 60000x60000 pixels."""
    data = bytearray(jpeg(noise(0)))
    sof = data.find(b"\xff\xc0")
    data[sof + 5 : sof + 9] = (60000).to_bytes(2, "big") * 2
    return bytes(data)


def with_box(box, score=0.9, class_id=0, class_name="person"):
    def change(message: Detections) -> None:
        d = message.detections[0]
        d.box.x1, d.box.y1, d.box.x2, d.box.y2 = box
        d.score, d.class_id, d.class_name = score, class_id, class_name

    return change


def sized(width: int, height: int):
    def change(message: Detections) -> None:
        message.ref.width, message.ref.height = width, height

    return change


NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize(
    ("stored", "change", "reason"),
    [
        (noise(0), with_box((NAN, 0, 10, 10)), "non-finite coordinate or score"),
        (noise(0), with_box((0, 0, INF, 10)), "non-finite coordinate or score"),
        (noise(0), with_box((0, 0, 10, 10), score=7.0), "score 7.0, outside 0..1"),
        (noise(0), with_box((0, 0, 10, 10), class_id=80), "the model's class 80 is 'none'"),
        (noise(0), with_box((0, 0, 10, 10), class_id=2), "the model's class 2 is 'car'"),
        (noise(0), sized(0, 0), "has no size in its record"),
        (noise(0), sized(100_000, 100_000), "exceeds 40000000 pixels"),
        (b"\x00" * 1000, None, "neither 160x120 raw BGR24 nor a JPEG"),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 50, None, "neither 160x120 raw BGR24 nor a JPEG"),
        (bomb(), None, "declares 60000x60000, over 40000000 pixels"),
        (jpeg(noise(0, (64, 48))), None, "stored frame is 64x48, its record says 160x120"),
        (jpeg(noise(0))[:300], None, "cannot decode the stored frame"),
    ],
    ids=["nan-box", "inf-box", "score", "class-id", "class-name", "no-size", "huge-size",
         "garbage", "broken-jpeg", "bomb", "wrong-size", "truncated"],
)  # fmt: skip
def test_hostile_input_is_dead_lettered_with_its_reason(
    client, prefix, camera, pixels, stored, change, reason
):
    dataset = StubDataset()
    handler = handler_for(every_frame("{camera: {minute: 5}}"), client, prefix, dataset)
    park(pixels, camera, 0, stored)
    message = detections(camera, 0)
    if change is not None:
        change(message)
    [result] = handle(handler, message)
    assert isinstance(result, PoisonMessage), result
    assert reason in str(result)
    assert dataset.added == []
    ok(handle(handler, detections(camera, 1)))  # the next frame is unaffected (no pixels)


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (DriftEvent(state=DriftState.DRIFT_STATE_STARTED), "without event_id"),
        (DriftEvent(event_id="e", state=DriftState.DRIFT_STATE_UNSPECIFIED), "neither started"),
    ],
)
def test_a_malformed_drift_event_is_dead_lettered(client, prefix, camera, event, reason):
    event.ref.camera_id = camera
    [result] = handle(handler_for(UNCERTAIN, client, prefix), event)
    assert isinstance(result, PoisonMessage) and reason in str(result)


def test_a_camera_id_full_of_path_is_carried_as_text(client, admin, prefix, pixels):
    camera_id = f"a/../../{uuid.uuid4().hex[:6]}:x"  # valid by the record rules
    dataset = StubDataset()
    handler = handler_for(UNCERTAIN, client, prefix, dataset)
    park(pixels, camera_id, 0, noise(0))
    try:
        ok(handle(handler, detections(camera_id, 0, candidates=[UNSURE_DOG])))
    finally:
        admin.delete(frame_key(camera_id, 0))
    assert dataset.added[0].camera_id == camera_id  # the dataset escapes it for file names


def test_boxes_are_clipped_to_the_image_and_empty_ones_dropped():
    served = [
        detection("person", 0.9, (-5, -5, 50, 200)),
        detection("car", 0.9, (170, 10, 200, 20)),  # right of the image
    ]
    [box] = to_boxes(served, W, H, CLASSES)
    assert (box.x1, box.y1, box.x2, box.y2) == (0, 0, 50, H)


# ---- the real dataset --------------------------------------------------------------------------


def test_a_capture_lands_in_the_real_dataset(client, prefix, camera, pixels, tmp_path, clip):
    dataset_module = pytest.importorskip("services.capture.dataset")
    dataset = dataset_module.Dataset(str(tmp_path / "dataset"), CLASSES)
    handler = handler_for(UNCERTAIN, client, prefix, dataset)
    height, width = clip[100].shape[:2]
    park(pixels, camera, 100, clip[100])
    ok(handle(handler, detections(camera, 100, size=(width, height), candidates=[UNSURE_DOG])))
    handler.close()
    images = list((tmp_path / "dataset").rglob("*.jpg"))
    assert len(images) == 1
    assert cv2.imread(str(images[0])).shape == clip[100].shape
    assert (tmp_path / "dataset" / "data.yaml").is_file()
