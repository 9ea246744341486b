"""`steadyeye bench cameras`: how many live cameras this node keeps in real time.

Cameras are the sample clip served live from 127.0.0.1 at its own rate (10 fps;
steadyeye/bench/livefeed.py). The count steps up one camera at a time until a step breaks real
time: end-to-end p99 over 1 s, or a frame shed. For Steadyeye, one ingest replica runs the
cameras topic and each step adds a camera at runtime (`steadyeye cameras`), nothing restarts;
latency is capture to Detections published. Beside it, the single-script baseline (decode,
letterbox, ONNX Runtime with the same fused model, tracking) as one process per camera; its
latency is how far each frame is handled behind the live stream. Both on the same machine in
one run, with the CPU per frame at the highest count held: every process of the stack (broker,
Redis, Triton and its model stubs, the services) against the baseline's processes. The rest of
the machine's busy CPU meanwhile is reported beside each step (`background_cores`): these
machines are shared and noisy, so compare the two in one run.
"""

from __future__ import annotations

import multiprocessing
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import numpy as np
import psutil
import tritonclient.grpc as triton
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console

from services import contract as contracts
from services.contract import ModelContract
from services.core.messages import decode
from services.ingest import directory
from services.ingest.cameras import Camera
from steadyeye.bench.livefeed import LiveFeed
from steadyeye.bench.pipeline import busy_cpu_seconds, stack_cpu_seconds
from steadyeye.embedded.stack import Stack
from steadyeye.tally import TopicReader
from steadyeye.v1.detections_pb2 import Detections
from steadyeye.v1.frames_pb2 import Frame

CAMERA_PREFIX = "cameras-"
P99_LIMIT_MS = 1000.0
START_TIMEOUT_S = 60.0
ANSWER_GRACE_S = 3.0  # after a window: frames still in flight count, late ones as late
KEEP_UP = 0.95  # share of the cameras' frames a step must take in


def _p99(values_ms: list[float]) -> float | None:
    return round(float(np.percentile(values_ms, 99)), 1) if values_ms else None


def bench_cameras(video: Path, console: Console, max_cameras: int = 12, step_s: float = 20.0,
                  warmup_s: float = 5.0) -> dict:  # fmt: skip
    with (
        tempfile.TemporaryDirectory(prefix="steadyeye-bench-cameras-") as workdir,
        LiveFeed(video) as feed,
        Stack(say=lambda text: console.print(f"[dim]{text}[/dim]"), fresh_redis=True,
              workdir=Path(workdir)) as stack,
    ):  # fmt: skip
        client = triton.InferenceServerClient(stack.triton_grpc)
        contract = contracts.fetch(client, stack.model.name, 60)
        client.close()
        model_onnx = stack.workdir / "model_repository" / stack.model.name / "1" / "model.onnx"
        console.print("[bold]baseline[/bold]: one process per camera")
        base = _step_up(lambda n: _baseline_step(feed, n, model_onnx, contract, step_s,
                                                 warmup_s), max_cameras, console)  # fmt: skip
        console.print("[bold]steadyeye[/bold]: one ingest replica, cameras added at runtime")
        [ingest] = stack.start_ingest_replicas(1)
        pipeline = _Pipeline(stack, feed, stack.service_ports[ingest])
        try:
            ours = _step_up(lambda n: pipeline.step(n, step_s, warmup_s), max_cameras, console)
        finally:
            pipeline.close()
    return {
        "cameras": ours["cameras"],
        "baseline_cameras": base["cameras"],
        "cpu_ms_per_frame": ours["cpu_ms_per_frame"],
        "baseline_cpu_ms_per_frame": base["cpu_ms_per_frame"],
        "p99_limit_ms": P99_LIMIT_MS,
        "fps_per_camera": feed.fps,
        "steps": {"steadyeye": ours["steps"], "baseline": base["steps"]},
        "cpu_cores": psutil.cpu_count(),
    }


def _step_up(step: Callable[[int], dict], max_cameras: int, console: Console) -> dict:
    """Step the camera count until a step breaks real time; the last one that held."""
    steps, held = [], None
    for n in range(1, max_cameras + 1):
        figures = step(n)
        steps.append(figures)
        console.print(f"  {n} cameras: p99 {figures['p99_ms']} ms, shed {figures['shed']}, "
                      f"{figures['cpu_ms_per_frame']} CPU ms/frame, "
                      f"{'held' if figures['held'] else 'BROKE real time'}")  # fmt: skip
        if not figures["held"]:
            break
        held = figures
    return {
        "cameras": held["cameras"] if held else 0,
        "cpu_ms_per_frame": held["cpu_ms_per_frame"] if held else None,
        "steps": steps,
    }


def _figures(n: int, latencies_ms: list[float], shed: int, frames: int, cpu_s: float,
             busy_s: float, window_s: float, fps: float,
             behind_ms: float = 0.0) -> dict:  # fmt: skip
    """Real time held: every camera read at its rate (95 %), p99 within the limit, nothing
    shed, and (the baseline, which cannot shed) not falling further behind the live stream."""
    p99 = _p99(latencies_ms)
    kept_up = frames >= KEEP_UP * n * fps * window_s
    return {
        "cameras": n,
        "frames": frames,
        "fps": round(frames / window_s, 1),
        "p99_ms": p99,
        "p50_ms": round(float(np.median(latencies_ms)), 1) if latencies_ms else None,
        "shed": shed,
        "fell_behind_ms": round(behind_ms, 1),
        "cpu_ms_per_frame": round(1000 * cpu_s / frames, 2) if frames else None,
        "background_cores": round(max(0.0, busy_s - cpu_s) / window_s, 2),
        "held": kept_up
        and p99 is not None
        and p99 <= P99_LIMIT_MS
        and shed == 0
        and behind_ms <= P99_LIMIT_MS,
    }


class _Pipeline:
    """The embedded stack's cameras: added one per step, read back from the topics."""

    def __init__(self, stack: Stack, feed: LiveFeed, ingest_port: int) -> None:
        self._stack, self._feed, self._ingest_port = stack, feed, ingest_port
        topics = stack.topics
        self._reader = TopicReader(stack.bootstrap, [topics.frames, topics.detections])
        self._captured: dict[tuple[str, int], float] = {}  # frame -> capture time (s)
        self._answered: dict[tuple[str, int], float] = {}  # frame -> published (s)

    def step(self, n: int, step_s: float, warmup_s: float) -> dict:
        camera = f"{CAMERA_PREFIX}{n}"
        directory.publish(self._stack.bootstrap, self._stack.topics.cameras,
                          [Camera(id=camera, source=self._feed.url(camera))], [])  # fmt: skip
        deadline = time.monotonic() + START_TIMEOUT_S
        while not any(key[0] == camera for key in self._captured):
            if time.monotonic() > deadline:
                raise RuntimeError(f"camera {camera} sent nothing in {START_TIMEOUT_S:.0f}s")
            self._read()
        self._read_for(warmup_s)
        shed, cpu, busy = self._shed(), stack_cpu_seconds(self._stack), busy_cpu_seconds()
        start = time.time()
        self._read_for(step_s)
        used = {name: s - cpu.get(name, 0.0) for name, s in stack_cpu_seconds(self._stack).items()}
        busy_s, end, shed = busy_cpu_seconds() - busy, time.time(), self._shed() - shed
        self._read_for(ANSWER_GRACE_S)
        window = [k for k, t in self._captured.items() if start <= t < end]
        latencies = [
            1000 * (self._answered.get(k, end + ANSWER_GRACE_S) - self._captured[k]) for k in window
        ]
        answered = sum(k in self._answered for k in window)
        figures = _figures(n, latencies, int(shed), len(window), sum(used.values()), busy_s,
                           step_s, self._feed.fps)  # fmt: skip
        # Where the CPU goes: Triton's Python backend against the services around it.
        figures["cpu_ms_per_frame_by_process"] = {
            name: round(1000 * s / answered, 2) for name, s in sorted(used.items()) if answered
        }
        return figures

    def _read_for(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self._read()

    def _read(self) -> None:
        for record in self._reader.records():
            if record.topic == self._stack.topics.frames:
                ref = decode(record.value, record.headers, Frame).ref
                captured = ref.capture_time.ToNanoseconds() / 1e9
                self._captured[(ref.camera_id, ref.frame_id)] = captured
            else:
                ref = decode(record.value, record.headers, Detections).ref
                self._answered.setdefault((ref.camera_id, ref.frame_id), record.timestamp / 1000)

    def _shed(self) -> float:
        """Live frames ingest dropped because the pipeline was behind (its own counter)."""
        url = f"http://127.0.0.1:{self._ingest_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as reply:
            text = reply.read().decode()
        return sum(
            sample.value
            for family in text_string_to_metric_families(text)
            if family.name == "steadyeye_ingest_frames_dropped"
            for sample in family.samples
            if sample.name.endswith("_total")
        )

    def close(self) -> None:
        self._reader.close()


def _baseline_step(feed: LiveFeed, n: int, model_onnx: Path, contract: ModelContract,
                   step_s: float, warmup_s: float) -> dict:  # fmt: skip
    """n processes, one live camera each, for warm-up + the window; the node's CPU meanwhile."""
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    processes = [
        context.Process(target=_baseline_camera, daemon=True, args=(
            feed.url(f"baseline-{n}-{k}"), model_onnx, contract, warmup_s, step_s, results))
        for k in range(n)
    ]  # fmt: skip
    for process in processes:
        process.start()
    # Each process says when its window starts (after loading its model and warm-up).
    starts = [results.get(timeout=START_TIMEOUT_S + warmup_s) for _ in processes]
    busy = busy_cpu_seconds()
    outcomes = [results.get(timeout=START_TIMEOUT_S + step_s) for _ in processes]
    busy_s = busy_cpu_seconds() - busy
    for process in processes:
        process.join(10)
    assert all(start == "window" for start in starts)
    latencies = [ms for outcome in outcomes for ms in outcome["latencies_ms"]]
    frames = sum(outcome["frames"] for outcome in outcomes)
    cpu_s = sum(outcome["cpu_s"] for outcome in outcomes)
    behind = max(outcome["fell_behind_ms"] for outcome in outcomes)
    return _figures(n, latencies, 0, frames, cpu_s, busy_s, step_s, feed.fps, behind)


def _baseline_camera(url: str, model_onnx: Path, contract: ModelContract, warmup_s: float,
                     window_s: float, results: multiprocessing.Queue) -> None:  # fmt: skip
    """The one-file script a team could write, reading one live camera. Latency: from reading
    a frame to its tracks, as Steadyeye's is from ingest reading it to its detections out. A
    script that cannot keep up reads ever further behind the live stream instead of shedding:
    `fell_behind_ms` is how much further behind (its frames against the stream's clock) it
    was at the end of the window than at its start."""
    import cv2
    import onnxruntime as ort

    from services.core.settings import load
    from services.inference.settings import InferenceSettings
    from services.preprocess.letterbox import letterbox
    from services.tracking.tracker import ByteTracker

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # one process per camera: one core's share each
    session = ort.InferenceSession(str(model_onnx), options, providers=["CPUExecutionProvider"])
    tracker, serving = ByteTracker(), load(InferenceSettings).min_score
    capture = cv2.VideoCapture(url, cv2.CAP_FFMPEG)
    fps = capture.get(cv2.CAP_PROP_FPS) or 10.0
    latencies: list[float] = []
    behind: list[float] = []  # ms behind the stream's clock (first frame + index / fps)
    first_at, index, window_at, window_end, cpu_at = None, 0, None, None, 0.0
    while True:
        ok, image = capture.read()
        if not ok:
            break
        read_at = time.monotonic()
        first_at = first_at if first_at is not None else read_at
        boxed = letterbox(image, contract)
        boxes, scores, classes, count = session.run(None, {"images": boxed.image[None]})
        k = int(count[0, 0])
        served = scores[0, :k] >= serving
        xy = (boxes[0, :k][served].reshape(-1, 2, 2) - (boxed.pad_x, boxed.pad_y)) / boxed.scale
        tracker.update(xy.reshape(-1, 4), scores[0, :k][served], classes[0, :k][served], index)
        done = time.monotonic()
        if window_at is None and done - first_at >= warmup_s:
            window_at, window_end, cpu_at = done, done + window_s, time.process_time()
            results.put("window")
        if window_at is not None:
            latencies.append(1000 * (done - read_at))
            behind.append(1000 * (done - (first_at + index / fps)))
            if done >= window_end:  # type: ignore[operator]
                break
        index += 1
    capture.release()
    if window_at is None:
        results.put("window")
    # This process's CPU over its window, ONNX Runtime's threads included.
    cpu_s = time.process_time() - cpu_at if window_at is not None else 0.0
    edge = max(1, len(behind) // 10)  # the first and last tenth, so one slow frame is no trend
    fell = float(np.mean(behind[-edge:]) - np.mean(behind[:edge])) if behind else 0.0
    results.put({"latencies_ms": latencies, "frames": len(latencies), "cpu_s": cpu_s,
                 "fell_behind_ms": fell})  # fmt: skip
