"""Chaos: every service is killed (SIGKILL) and stopped (SIGTERM) mid-stream, and no frame or
alert is lost. Duplicates, which at-least-once delivery allows after a crash, are counted; after
a clean SIGTERM there must be none (except ingest's file sources, which restart from frame 0).

Each scenario watches one fresh camera on every topic from the moment it starts, streams
frames (or, for alert, a scripted Tracks sequence), injects the fault once the service under
test has produced part of its output, and waits until everything has come out. The session
ends with a table of the scenarios (see docs/guarantees.md for what the numbers mean).
"""

from __future__ import annotations

import re
import signal
import threading
import time
import uuid
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
from google.protobuf.message import Message
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

from services.alert.handler import to_observation
from services.alert.rules import AlertEngine, load_rules
from services.core import payload_keys
from services.core.messages import schema_headers
from services.core.payload_keys import frame_key
from steadyeye.embedded.process import ManagedProcess
from steadyeye.embedded.stack import Stack
from steadyeye.v1.alerts_pb2 import Alert
from steadyeye.v1.common_pb2 import ClaimCheck, FrameRef, Payload
from steadyeye.v1.detections_pb2 import Detections
from steadyeye.v1.frames_pb2 import Frame, ImageEncoding, ReadyFrame
from steadyeye.v1.tracks_pb2 import Tracks, TrackState
from tests.conftest import DATA, readyz, wait_for
from tests.test_alert_service import tracks_sequence

pytestmark = [pytest.mark.stack, pytest.mark.chaos]

SERVICES = ("ingest", "preprocess", "inference", "tracking", "alert")
# Consumer services: input topic -> output topic (attributes of TopicSettings).
HOPS = {
    "preprocess": ("frames", "ready"),
    "inference": ("ready", "detections"),
    "tracking": ("detections", "tracks"),
    "alert": ("tracks", "alerts"),
}
TYPES = {"frames": Frame, "ready": ReadyFrame, "detections": Detections, "tracks": Tracks}
FRAMES, FPS = 40, 10.0  # frames sent per consumer scenario, and their rate
INGEST_FRAMES, INGEST_FPS = 60, 20.0  # the second ingest's vtest.avi camera
FAULT_AFTER = 10  # inject the fault once the service under test has output this many frames
BURST = 20  # and a burst of this many frames has been sent after them
TIMEOUT_S = 120.0


@dataclass
class Row:
    fault: str
    frames_in: int
    frames_out: str
    lost: int
    duplicated: str
    recovery_s: float
    note: str = ""


ROWS: list[Row] = []


class _Summary:
    """A plugin registered by the session fixture below: its table ends the terminal report."""

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if not ROWS:
            return
        header = ("fault", "frames in", "frames out", "lost", "duplicated", "recovery s", "note")
        cells = [header] + [
            (
                r.fault,
                str(r.frames_in),
                r.frames_out,
                str(r.lost),
                r.duplicated,
                f"{r.recovery_s:.1f}",
                r.note,
            )
            for r in ROWS
        ]
        widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
        terminalreporter.write_sep("=", "chaos summary")
        for row in cells:
            terminalreporter.write_line(
                "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True))
            )
        terminalreporter.write_line(
            "frames out: records on detections/tracks (alerts for alert); duplicated: records "
            "minus distinct frame ids, per topic; recovery: fault -> the service ready again"
        )


@pytest.fixture(scope="session", autouse=True)
def chaos_summary(request: pytest.FixtureRequest) -> None:
    manager = request.config.pluginmanager
    if not manager.has_plugin("steadyeye-chaos-summary"):
        manager.register(_Summary(), "steadyeye-chaos-summary")


@pytest.fixture(autouse=True)
def stack_ready_afterwards(stack: Stack) -> Iterator[None]:
    """Whatever a scenario did, the shared stack is whole again for the tests after it."""
    yield
    for key in list(stack.service_ports):
        assert wait_for(lambda k=key: readyz(stack.service_ports[k]) == 200, TIMEOUT_S), (
            f"{key} not ready again after the chaos test:\n{stack.processes[key].tail()}"
        )


@pytest.fixture(scope="module")
def frame_bgr(bus_jpg: bytes) -> np.ndarray:
    """bus.jpg at 640x480, raw: people to track; sent like ingest sends video frames, through
    the Redis claim-check, so a burst is small on the broker."""
    image = cv2.imdecode(np.frombuffer(bus_jpg, np.uint8), cv2.IMREAD_COLOR)
    return cv2.resize(image, (640, 480))


class Watch:
    """Every record of one camera on the pipeline's topics from now on, collected by a
    background consumer that starts at the end of every partition (exact, and cheap however
    much the session has already sent)."""

    def __init__(self, stack: Stack, camera_id: str) -> None:
        self.topics = stack.topics
        self._key = camera_id.encode()
        names = ["frames", "ready", "detections", "tracks", "alerts", "deadletter"]
        self._name = {getattr(self.topics, n): n for n in names}
        self._consumer = KafkaConsumer(
            bootstrap_servers=stack.bootstrap,
            enable_auto_commit=False,
            fetch_max_wait_ms=5,
            max_partition_fetch_bytes=8 * 1024 * 1024,
        )
        self.partitions = [
            TopicPartition(topic, p)
            for topic in self._name
            for p in sorted(self._consumer.partitions_for_topic(topic) or ())
        ]
        self._consumer.assign(self.partitions)
        self._consumer.seek_to_end(*self.partitions)
        self._positions = {tp: self._consumer.position(tp) for tp in self.partitions}
        self._records: dict[str, list[ConsumerRecord]] = {n: [] for n in names}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="chaos-watch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                batch = self._consumer.poll(timeout_ms=100)
                with self._lock:
                    for tp, records in batch.items():
                        self._records[self._name[tp.topic]] += [
                            r for r in records if r.key == self._key
                        ]
                    self._positions = {tp: self._consumer.position(tp) for tp in self.partitions}
        except BaseException as exc:  # surfaced by the next read
            self._error = exc
        finally:
            self._consumer.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def records(self, topic: str) -> list[ConsumerRecord]:
        if self._error is not None:
            raise RuntimeError("the watch consumer failed") from self._error
        with self._lock:
            return list(self._records[topic])

    def messages(self, topic: str) -> list[Message]:
        kind = TYPES.get(topic, Alert)
        return [kind.FromString(r.value) for r in self.records(topic)]

    def frame_ids(self, topic: str) -> list[int]:
        return [m.ref.frame_id for m in self.messages(topic)]

    def sync(self, timeout_s: float = 10.0) -> None:
        """Wait until everything on the topics now has been read."""
        probe = KafkaConsumer(bootstrap_servers=self._consumer.config["bootstrap_servers"])
        try:
            ends = probe.end_offsets(self.partitions)
        finally:
            probe.close()

        def caught_up() -> bool:
            with self._lock:
                return all(self._positions[tp] >= end for tp, end in ends.items())

        assert wait_for(caught_up, timeout_s), "the watch consumer fell behind"


class Stream(threading.Thread):
    """Send items 0..count-1 as a camera would, at a steady rate, except `burst` items from
    `burst_at` on that go out at once: a backlog, so that the service under test has work in
    hand when the fault comes. `send` queues an item, `flush` waits until the broker has it."""

    def __init__(
        self,
        send: Callable[[int], None],
        flush: Callable[[], None],
        count: int,
        fps: float,
        burst_at: int = 0,
        burst: int = 0,
    ) -> None:
        super().__init__(name="chaos-stream", daemon=True)
        self._send, self._flush, self._count, self._fps = send, flush, count, fps
        self._burst = range(burst_at, burst_at + burst)
        self.burst_sent = threading.Event()
        self.sent = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        started, slot = time.monotonic(), 0
        try:
            for i in range(self._count):
                if i not in self._burst or i == self._burst.start:
                    time.sleep(max(0.0, started + slot / self._fps - time.monotonic()))
                    slot += 1
                self._send(i)
                if i not in self._burst[:-1]:
                    self._flush()
                    self.sent = i + 1
                if self._burst and i == self._burst[-1]:
                    self.burst_sent.set()
        except BaseException as exc:
            self.error = exc
        finally:
            self.burst_sent.set()

    def finish(self) -> int:
        self.join(self._count / self._fps + 30)
        assert self.error is None, f"sending failed: {self.error!r}"
        assert self.sent == self._count
        return self.sent


def frame_sender(pipeline, camera_id: str, image: np.ndarray) -> Callable[[int], None]:
    """Pipeline.send_frame without its flush, so that a burst leaves in one go."""

    def send(frame_id: int) -> None:
        ref = FrameRef(camera_id=camera_id, frame_id=frame_id, width=640, height=480)
        ref.capture_time.GetCurrentTime()
        payload = pipeline.payloads.put(frame_key(camera_id, frame_id), image.tobytes())
        frame = Frame(ref=ref, encoding=ImageEncoding.IMAGE_ENCODING_BGR24, image=payload)
        pipeline.producer.send(
            pipeline.topics.frames,
            key=camera_id.encode(),
            value=frame.SerializeToString(),
            headers=schema_headers(frame),
        )

    return send


@dataclass
class Outcome:
    """What a fault did to the process under test."""

    recovery_s: float  # fault -> ready again (a new process, /readyz 200)
    exit_code: int | None = None  # SIGTERM: how it exited, and how long that took
    exit_s: float = 0.0
    before_restart: dict[str, list[int]] | None = None  # SIGTERM: frame ids out before restart
    committed: dict[TopicPartition, int] | None = None  # SIGTERM: the group's offsets then


def wait_back(stack: Stack, key: str, old_pid: int | None, since: float) -> float:
    process: ManagedProcess = stack.processes[key]
    port = stack.service_ports[key]
    back = wait_for(
        lambda: process.pid != old_pid and process.running() and readyz(port) == 200,
        TIMEOUT_S,
        0.1,
    )
    assert back, f"{key} did not come back:\n{process.tail()}"
    return time.monotonic() - since


def inject(
    stack: Stack,
    key: str,
    fault: str,
    watch: Watch,
    before_restart: Callable[[], None] = lambda: None,
) -> Outcome:
    """kill -9: the supervisor restarts the process. SIGTERM: ManagedProcess.stop() (which
    SIGKILLs only after the grace period), the state left behind is read, then the test
    restarts the process (stop() tells the supervisor's watcher to let it be)."""
    process: ManagedProcess = stack.processes[key]
    old_pid, started = process.pid, time.monotonic()
    if fault == "kill -9":
        process.signal(signal.SIGKILL)
        return Outcome(recovery_s=wait_back(stack, key, old_pid, started))
    code = process.stop()
    outcome = Outcome(recovery_s=0.0, exit_code=code, exit_s=time.monotonic() - started)
    try:  # what it left behind, read while nothing runs in its place
        watch.sync()
        outcome.before_restart = {t: watch.frame_ids(t) for t in (*TYPES, "alerts")}
        if key in HOPS:
            group, source = f"steadyeye-{key}", getattr(watch.topics, HOPS[key][0])
            wanted = [tp for tp in watch.partitions if tp.topic == source]
            admin = KafkaAdminClient(bootstrap_servers=stack.bootstrap)
            try:
                offsets = admin.list_group_offsets({group: wanted})[group]
            finally:
                admin.close()
            outcome.committed = {tp: meta.offset for tp, meta in offsets.items()}
        before_restart()
    finally:
        process.start()
    outcome.recovery_s = wait_back(stack, key, old_pid, started)
    return outcome


def check_exit(outcome: Outcome, process: ManagedProcess) -> str:
    assert outcome.exit_code == 0, f"exit code {outcome.exit_code}:\n{process.tail()}"
    assert outcome.exit_s < process.grace_s
    return f"exit 0 in {outcome.exit_s:.1f}s"


def check_committed(watch: Watch, service: str, outcome: Outcome, out_ids: set[int]) -> None:
    """After a SIGTERM: the frames whose input offsets were committed are exactly those whose
    output was published. Nothing published is left uncommitted (it would come out again), and
    nothing committed is unpublished (it would be lost)."""
    assert outcome.committed is not None
    source = getattr(watch.topics, HOPS[service][0])
    mine = watch.records(HOPS[service][0])
    assert mine
    committed = {
        TYPES[HOPS[service][0]].FromString(r.value).ref.frame_id
        for r in mine
        if r.offset < outcome.committed.get(TopicPartition(source, r.partition), 0)
    }
    assert committed, f"{service} committed none of this camera's input before it stopped"
    assert out_ids == committed


def probe_until_tracked(stack: Stack, pipeline, frame_bgr) -> float:
    """Frames of a probe camera, one a second, until one comes out as tracks: when."""
    camera_id = f"chaos-probe-{uuid.uuid4().hex[:8]}"
    watch = Watch(stack, camera_id)
    try:
        for frame_id in range(int(TIMEOUT_S)):
            pipeline.send_frame(camera_id, frame_id, frame_bgr)
            if wait_for(lambda: watch.frame_ids("tracks"), 1.0, 0.1):
                return time.monotonic()
    finally:
        watch.close()
    raise AssertionError(f"no probe frame reached tracks within {TIMEOUT_S:.0f}s")


def dup(ids: list[int]) -> int:
    return len(ids) - len(set(ids))


def check_frames(watch: Watch, count: int) -> tuple[list[int], list[int]]:
    """Every frame 0..count-1 reaches detections and tracks, a redelivered frame carries the
    same track ids, and nothing was dead-lettered."""
    wanted = set(range(count))
    arrived = wait_for(
        lambda: (
            wanted <= set(watch.frame_ids("detections"))
            and wanted <= set(watch.frame_ids("tracks"))
        ),
        TIMEOUT_S,
        0.2,
    )
    time.sleep(0.5)  # a late duplicate would show up now
    detections, tracks = watch.frame_ids("detections"), watch.frame_ids("tracks")
    assert arrived, (
        f"lost: detections {sorted(wanted - set(detections))}, tracks "
        f"{sorted(wanted - set(tracks))}"
    )
    by_frame: dict[int, list[int]] = {}
    for message in watch.messages("tracks"):
        ids = [t.track_id for t in message.tracks if t.state != TrackState.TRACK_STATE_ENDED]
        assert by_frame.setdefault(message.ref.frame_id, ids) == ids
    assert watch.records("deadletter") == []
    return detections, tracks


def frames_row(fault: str, sent: int, det: list[int], trk: list[int], recovery_s: float, note=""):
    lost = len(set(range(sent)) - (set(det) & set(trk)))
    ROWS.append(
        Row(fault, sent, f"{len(det)}/{len(trk)}", lost, f"{dup(det)}/{dup(trk)}", recovery_s, note)
    )


# ---- consumers: preprocess, inference, tracking ---------------------------------------------


def consumer_scenario(stack, pipeline, frame_bgr, service: str, fault: str) -> None:
    camera_id = f"chaos-{uuid.uuid4().hex[:8]}"
    output = HOPS[service][1]
    watch = Watch(stack, camera_id)
    try:
        stream = Stream(
            frame_sender(pipeline, camera_id, frame_bgr),
            pipeline.producer.flush,
            FRAMES,
            FPS,
            burst_at=FAULT_AFTER,
            burst=BURST,
        )
        stream.start()
        source = HOPS[service][0]

        def pending() -> int:
            """Frames of this camera on the service's input, not yet on its output."""
            return len(watch.records(source)) - len(watch.records(output))

        assert wait_for(
            lambda: stream.burst_sent.is_set() and len(watch.records(output)) >= FAULT_AFTER,
            TIMEOUT_S,
        )
        # The burst reaching the service: strike while it has the backlog in hand. (tracking
        # handles a batch in milliseconds, so there the backlog is seldom seen: strike anyway.)
        wait_for(lambda: pending() >= BURST // 2, 3.0, 0.01)
        in_hand = pending()
        outcome = inject(stack, service, fault, watch)
        sent = stream.finish()
        detections, tracks = check_frames(watch, sent)
        note = f"{in_hand} pending at the fault"
        if fault == "SIGTERM":
            note = f"{check_exit(outcome, stack.processes[service])}; {note}"
            assert outcome.before_restart is not None
            check_committed(watch, service, outcome, set(outcome.before_restart[output]))
            assert dup(detections) == dup(tracks) == 0, "a clean SIGTERM sent frames twice"
    finally:
        watch.close()
    frames_row(f"{fault} {service}", sent, detections, tracks, outcome.recovery_s, note)


# ---- alert ----------------------------------------------------------------------------------


def expected_alerts(camera_id: str, sequence: list[Tracks]) -> dict[str, int]:
    """alert id -> the frame that fires it, from the rules engine run in-process."""
    engine, fired = AlertEngine(load_rules(DATA / "rules.yaml")), {}
    for message in sequence:
        observation = to_observation(message)
        fired |= {f.alert_id: f.frame_id for f in engine.observe(observation)}
    return fired


def alert_scenario(stack, pipeline, camera_id: str, fault: str) -> None:
    sequence = tracks_sequence(camera_id)
    expected = expected_alerts(camera_id, sequence)
    assert len(expected) == 3  # gate, yard, no-trucks; two early, gate at frame ~34

    def send(i: int) -> None:
        message = sequence[i]
        pipeline.send_raw(
            message.SerializeToString(),
            schema_headers(message),
            camera_id,
            topic=pipeline.topics.tracks,
        )

    watch = Watch(stack, camera_id)
    try:
        stream = Stream(send, pipeline.producer.flush, len(sequence), FPS)
        stream.start()
        # After the early alerts, before the gate crossing: the kill lands between alerts.
        assert wait_for(lambda: len(watch.records("alerts")) >= 2, TIMEOUT_S)
        before_fault = {a.alert_id for a in watch.messages("alerts")}
        out_at_fault = len(before_fault)
        outcome = inject(stack, "alert", fault, watch)
        sent = stream.finish()
        wait_for(lambda: len(watch.records("alerts")) >= len(expected), TIMEOUT_S, 0.2)
        time.sleep(2.0)  # a duplicate alert would come out now
        alerts = watch.messages("alerts")
        ids = [a.alert_id for a in alerts]
        note = f"{out_at_fault} of {len(expected)} alerts out at the fault"
        if fault == "SIGTERM":
            note = f"{check_exit(outcome, stack.processes['alert'])}; {note}"
            assert outcome.committed is not None and outcome.before_restart is not None
            # Alerts out before the restart are exactly those of frames whose offsets were
            # committed: none left to fire again, none committed without its alert.
            source = pipeline.topics.tracks
            committed_frames = {
                Tracks.FromString(r.value).ref.frame_id
                for r in watch.records("tracks")
                if r.offset < outcome.committed.get(TopicPartition(source, r.partition), 0)
            }
            assert sorted(outcome.before_restart["alerts"]) == sorted(
                f for f in expected.values() if f in committed_frames
            )
    finally:
        watch.close()
    lost = len(set(expected) - set(ids))
    ROWS.append(
        Row(
            f"{fault} alert",
            sent,
            f"{len(ids)} alerts",
            lost,
            str(dup(ids)),
            outcome.recovery_s,
            note,
        )
    )
    assert set(ids) == set(expected), "every alert, none lost"
    counts = Counter(ids)
    if fault == "SIGTERM":  # a clean drain commits what it published: nothing comes twice
        assert counts == Counter(list(expected)), "every alert exactly once by alert_id"
    else:
        # kill -9 can land between an alert's flush and its record as sent: that alert, one
        # already out at the fault, comes once more with the same id (dedupe on alert_id);
        # every other alert exactly once.
        again = {a for a, n in counts.items() if n > 1}
        assert again <= before_fault and max(counts.values()) <= 2, counts


# ---- ingest: a second instance with a camera of its own -------------------------------------


def ingest_scenario(stack, vtest_avi: Path, tmp_path: Path, fault: str) -> None:
    camera_id = f"chaos-ingest-{uuid.uuid4().hex[:8]}"
    key = f"ingest-{camera_id}"
    cameras = tmp_path / "cameras.yaml"
    cameras.write_text(
        "cameras:\n"
        f"- {{id: {camera_id}, source: '{vtest_avi}', pace: realtime, fps: {INGEST_FPS}, "
        f"max_frames: {INGEST_FRAMES}}}\n"
    )
    watch = Watch(stack, camera_id)
    logged: list[int] = []

    def read_log() -> None:
        lines = stack.processes[key].log_path.read_text(errors="replace")
        logged.extend(int(n) for n in re.findall(r"published (\d+) frames; bye", lines))

    try:
        stack.start_service(
            "ingest", instance=key, env={"STEADYEYE_INGEST_CAMERAS_FILE": str(cameras)}
        )
        assert wait_for(lambda: len(watch.records("frames")) >= INGEST_FRAMES // 3, TIMEOUT_S)
        at_fault = len(watch.records("frames"))
        outcome = inject(stack, key, fault, watch, before_restart=read_log)
        detections, tracks = check_frames(watch, INGEST_FRAMES)
        assert sorted(set(watch.frame_ids("frames"))) == list(range(INGEST_FRAMES))
        note = f"{at_fault} frames out at the fault"
        if fault == "SIGTERM":
            assert outcome.before_restart is not None
            before = outcome.before_restart["frames"]
            note = f"{check_exit(outcome, stack.processes[key])}; {len(before)} frames out"
            # Drained: what went out before the SIGTERM is frames 0..n-1, none missing.
            assert before == list(range(len(before)))
            # A file source restarts from frame 0: exactly the frames before the SIGTERM come
            # again, and the tracker drops them (their ids are not new).
            assert dup(detections) == len(before)
            assert dup(tracks) == 0
            if logged and logged[-1] != len(before):
                # Not asserted: a bug of services/ingest (see docs/guarantees.md, known limits).
                note += f", its log says {logged[-1]}"
                warnings.warn(
                    f"ingest logged 'published {logged[-1]} frames' at SIGTERM, but "
                    f"{len(before)} reached {stack.topics.frames}",
                    stacklevel=1,
                )
    finally:
        watch.close()
        if key in stack.processes:
            stack.stop_service(key)
    frames_row(f"{fault} ingest", INGEST_FRAMES, detections, tracks, outcome.recovery_s, note)


# ---- the table ------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["kill -9", "SIGTERM"], ids=["kill9", "sigterm"])
@pytest.mark.parametrize("service", SERVICES)
def test_nothing_is_lost_when_a_service_dies_mid_stream(
    stack, pipeline, frame_bgr, vtest_avi, tmp_path, service, fault
):
    if service == "ingest":
        ingest_scenario(stack, vtest_avi, tmp_path, fault)
    elif service == "alert":  # a camera of tests/data/rules.yaml per fault: fresh alert state
        camera_id = "chaos-1" if fault == "kill -9" else "chaos-2"
        alert_scenario(stack, pipeline, camera_id, fault)
    else:
        consumer_scenario(stack, pipeline, frame_bgr, service, fault)


# ---- the servers the services depend on -----------------------------------------------------


def test_triton_stopped_for_20s_loses_nothing_and_inference_reports_unready(
    stack, pipeline, frame_bgr
):
    camera_id = f"chaos-triton-{uuid.uuid4().hex[:8]}"
    triton, port = stack.processes["triton"], stack.service_ports["inference"]
    watch = Watch(stack, camera_id)
    try:
        stream = Stream(
            frame_sender(pipeline, camera_id, frame_bgr), pipeline.producer.flush, 60, 5
        )
        stream.start()
        assert wait_for(lambda: len(watch.records("detections")) >= FAULT_AFTER, TIMEOUT_S)
        stopped_at = time.monotonic()
        triton.stop()
        try:
            assert wait_for(lambda: readyz(port) == 503, 20), "inference stayed ready"
            unready_s = time.monotonic() - stopped_at
            time.sleep(max(0.0, 20 - (time.monotonic() - stopped_at)))
        finally:
            triton.start()
        restarted_at = time.monotonic()
        assert wait_for(lambda: readyz(port) == 200, TIMEOUT_S, 0.1), "inference not ready again"
        recovery_s = time.monotonic() - restarted_at
        sent = stream.finish()
        detections, tracks = check_frames(watch, sent)
    finally:
        watch.close()
    note = f"unready {unready_s:.1f}s after the stop; recovery from Triton's restart"
    frames_row("Triton stopped 20 s", sent, detections, tracks, recovery_s, note)


def test_redis_restart_loses_payloads_to_the_dead_letter_topic_not_frames(
    stack, pipeline, frame_bgr
):
    """Restarting Redis empties it (tracker state, and frames' pixels when they are parked
    there, STEADYEYE_CLAIM_CHECK_STORE=redis): nothing crashes, a frame whose pixels are gone
    is dead-lettered with the reason, and frames sent after the restart flow as before.
    Lost = frames neither detected nor dead-lettered."""
    camera_id = f"chaos-redis-{uuid.uuid4().hex[:8]}"
    send = frame_sender(pipeline, camera_id, frame_bgr)
    redis_process = stack.processes["redis"]
    pids = {name: stack.processes[name].pid for name in HOPS}
    watch = Watch(stack, camera_id)
    try:
        for frame_id in range(BURST):
            send(frame_id)
        pipeline.producer.flush()
        assert wait_for(lambda: len(watch.records("detections")) >= 3, TIMEOUT_S, 0.05)
        restarted_at = time.monotonic()
        redis_process.stop()
        redis_process.start()
        assert wait_for(lambda: _redis_answers(pipeline), 30), "redis did not come back"
        # One frame whose payload vanishes on its own, as if its TTL ran out.
        send(BURST)
        vanished = Payload(claim_check=ClaimCheck(key=frame_key(camera_id, BURST)))
        scope = payload_keys.FRAMES.of(FrameRef(camera_id=camera_id, frame_id=BURST))
        pipeline.payloads.discard([(vanished, scope)])
        for frame_id in range(BURST + 1, 2 * BURST):
            send(frame_id)
        pipeline.producer.flush()
        after = set(range(BURST + 1, 2 * BURST))
        arrived = wait_for(lambda: after <= set(watch.frame_ids("tracks")), TIMEOUT_S, 0.2)
        missing = sorted(after - set(watch.frame_ids("tracks")))
        assert arrived, f"frames sent after the restart missing: {missing}"
        recovery_s = time.monotonic() - restarted_at
        wait_for(
            lambda: (
                set(range(2 * BURST))
                <= set(watch.frame_ids("detections")) | _dead_lettered_ids(watch)
            ),
            TIMEOUT_S,
            0.2,
        )
        detections, tracks = watch.frame_ids("detections"), watch.frame_ids("tracks")
        dead = _dead_lettered_ids(watch)
        reasons = {_header_text(r, "x-deadletter-reason") for r in watch.records("deadletter")}
    finally:
        watch.close()
    lost = set(range(2 * BURST)) - set(detections) - dead
    assert not lost, f"frames neither detected nor dead-lettered: {sorted(lost)}"
    assert BURST in dead
    assert all("is missing (" in reason for reason in reasons), reasons
    assert {name: stack.processes[name].pid for name in HOPS} == pids, "a service crashed"
    ROWS.append(
        Row(
            "Redis restarted",
            2 * BURST,
            f"{len(detections)}/{len(tracks)}",
            len(lost),
            f"{dup(detections)}/{dup(tracks)}",
            recovery_s,
            f"{len(dead)} dead-lettered (payload gone), no service restarted",
        )
    )


def _redis_answers(pipeline) -> bool:
    try:
        return bool(pipeline.redis.ping())
    except Exception:
        return False


def _header_text(record: ConsumerRecord, name: str) -> str:
    return dict(record.headers or ()).get(name, b"").decode()


def _dead_lettered_ids(watch: Watch) -> set[int]:
    return {Frame.FromString(r.value).ref.frame_id for r in watch.records("deadletter")}


def test_a_slow_consumer_pauses_file_sources_and_keeps_memory_bounded(stack, vtest_avi, tmp_path):
    """inference frozen (SIGSTOP) for 8 s: ingest's backlog limit stops a fast file source
    instead of letting Kafka and Redis fill up; thawed, every frame arrives."""
    camera_id = f"chaos-slow-{uuid.uuid4().hex[:8]}"
    key, limit, total = f"ingest-{camera_id}", 15, 80
    cameras = tmp_path / "cameras.yaml"
    cameras.write_text(
        f"cameras:\n- {{id: {camera_id}, source: '{vtest_avi}', pace: fast, max_frames: {total}}}\n"
    )
    inference = stack.processes["inference"]
    watch = Watch(stack, camera_id)
    try:
        stack.start_service(
            "ingest",
            instance=key,
            env={
                "STEADYEYE_INGEST_CAMERAS_FILE": str(cameras),
                "STEADYEYE_INGEST_MAX_BACKLOG_FRAMES": str(limit),
                "STEADYEYE_INGEST_BACKLOG_CHECK_S": "0.1",
            },
        )
        assert wait_for(lambda: len(watch.records("detections")) >= 3, TIMEOUT_S, 0.05)
        inference.signal(signal.SIGSTOP)
        stopped_at = time.monotonic()
        try:
            time.sleep(8)
            watch.sync()
            ingested = set(watch.frame_ids("frames"))
            detected = set(watch.frame_ids("detections"))
        finally:
            inference.signal(signal.SIGCONT)
        waiting = len(ingested - detected)
        detections, tracks = check_frames(watch, total)
        recovery_s = time.monotonic() - stopped_at - 8
    finally:
        watch.close()
        if key in stack.processes:
            stack.stop_service(key)
    # The limit is checked every 0.1 s and counts whole hops, so a few frames overshoot it.
    assert waiting <= limit + 10, f"{waiting} frames waited for inference, limit {limit}"
    assert len(ingested) < total, "ingest did not pause"
    note = (
        f"{waiting} frames waiting while frozen (limit {limit}); ingest paused at {len(ingested)}"
    )
    frames_row("inference frozen 8 s", total, detections, tracks, recovery_s, note)


def test_a_broker_restart_is_survived_and_the_pipeline_resumes(stack, pipeline, frame_bgr):
    """The embedded broker keeps everything in memory, so a restart loses topics, offsets and
    groups: this measures reconnection, not durability. Every service must rejoin on its
    own and carry the frames sent afterwards through to tracks."""
    broker = stack.processes["broker"]
    pids = {name: stack.processes[name].pid for name in HOPS}
    restarted_at = time.monotonic()
    broker.stop()
    broker.start()
    stack.create_topics()  # a fresh in-memory broker has none
    # Until each consumer has fetched from the new broker it still holds its old positions,
    # which can point inside the new, shorter logs and skip their first records (a real Kafka
    # keeps its log, so positions stay true). A probe camera's frames, one a second until one
    # comes out as tracks, show the services are back; the measured frames are sent after.
    recovery_s = probe_until_tracked(stack, pipeline, frame_bgr) - restarted_at
    camera_id = f"chaos-broker-{uuid.uuid4().hex[:8]}"
    watch = Watch(stack, camera_id)
    try:
        for frame_id in range(FRAMES // 2):
            pipeline.send_frame(camera_id, frame_id, frame_bgr)
        detections, tracks = check_frames(watch, FRAMES // 2)
    finally:
        watch.close()
    restarted = [n for n, pid in pids.items() if stack.processes[n].pid != pid]
    note = "reconnected; " + (f"restarted: {restarted}" if restarted else "no service restarted")
    frames_row("broker restarted", FRAMES // 2, detections, tracks, recovery_s, note)
