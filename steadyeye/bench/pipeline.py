"""`steadyeye bench pipeline`: the whole embedded stack side by side with the one-file script a
team could write instead, and with the served model alone, on the same frames in one run.

It prints figures and asserts nothing: these machines are noisy, so compare the ratios.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import psutil
import tritonclient.grpc as triton
from rich.console import Console

from services import contract as contracts
from services.core.settings import load
from services.inference.settings import InferenceSettings
from services.inference.versions import highest_ready
from services.preprocess.letterbox import letterbox
from services.tracking.tracker import ByteTracker
from steadyeye.embedded.stack import Stack
from steadyeye.tally import Tally, TopicReader

CAMERA = "bench"
MONITOR_STATE = "steadyeye:state:monitor:"  # the monitor's state per camera (its StateStore)


def _percentiles(latencies_s: list[float]) -> dict[str, float]:
    p50, p95, p99 = np.percentile(np.asarray(latencies_s) * 1000, [50, 95, 99])
    return {"p50": round(p50, 1), "p95": round(p95, 1), "p99": round(p99, 1)}


def _figures(frames: int, elapsed_s: float, latencies_s: list[float]) -> dict:
    return {"fps": round(frames / elapsed_s, 1), "latency_ms": _percentiles(latencies_s)}


def baseline(source: str, frames: int, model_onnx: Path, contract) -> dict:
    """One process, one loop: decode -> letterbox -> ONNX Runtime (the same fused model, so
    decoding and NMS included) -> tracking."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    session = ort.InferenceSession(str(model_onnx), options, providers=["CPUExecutionProvider"])
    tracker = ByteTracker()
    serving = load(InferenceSettings).min_score
    capture = cv2.VideoCapture(source)
    latencies: list[float] = []
    started = time.perf_counter()
    for frame_id in range(frames):
        t0 = time.perf_counter()
        ok, image = capture.read()
        if not ok:
            raise RuntimeError(f"{source} has fewer than {frames} frames")
        boxed = letterbox(image, contract)
        boxes, scores, classes, count = session.run(None, {"images": boxed.image[None]})
        n = int(count[0, 0])
        served = scores[0, :n] >= serving  # what inference sends downstream
        xy = (boxes[0, :n][served].reshape(-1, 2, 2) - (boxed.pad_x, boxed.pad_y)) / boxed.scale
        tracker.update(xy.reshape(-1, 4), scores[0, :n][served], classes[0, :n][served], frame_id)
        latencies.append(time.perf_counter() - t0)
    return _figures(frames, time.perf_counter() - started, latencies)


def model_only(source: str, frames: int, url: str, contract, in_flight: int) -> dict:
    """The served model through Triton alone, with the inference service's in-flight bound."""
    capture = cv2.VideoCapture(source)
    tensors = []
    for _ in range(frames):
        _, image = capture.read()
        tensors.append(letterbox(image, contract).image[None])
    client = triton.InferenceServerClient(url)
    version = highest_ready(client, contract.name)  # requests name it (rollouts load others)

    def infer(tensor: np.ndarray) -> float:
        t0 = time.perf_counter()
        request = triton.InferInput(contract.input_name, list(tensor.shape), "UINT8")
        request.set_data_from_numpy(tensor)
        client.infer(contract.name, [request], model_version=version)
        return time.perf_counter() - t0

    started = time.perf_counter()
    with ThreadPoolExecutor(in_flight) as pool:
        latencies = list(pool.map(infer, tensors))
    elapsed = time.perf_counter() - started
    client.close()
    return _figures(frames, elapsed, latencies)


def tree_cpu_seconds(process: psutil.Process) -> float:
    """Process plus its children (Triton's Python-backend stub runs the model)."""
    total = 0.0
    for p in [process, *process.children(recursive=True)]:
        try:
            times = p.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


def stack_cpu_seconds(stack: Stack) -> dict[str, float]:
    """CPU seconds so far of each of the stack's processes (Triton with its model stubs)."""
    found = {}
    for name, process in stack.processes.items():
        if process.pid and psutil.pid_exists(process.pid):
            found[name] = tree_cpu_seconds(psutil.Process(process.pid))
    return found


def _peak_rss_mb(process: psutil.Process) -> float:
    peak = 0
    for p in [process, *process.children(recursive=True)]:
        try:
            with open(f"/proc/{p.pid}/status") as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        peak += int(line.split()[1])
        except OSError:
            pass
    return round(peak / 1024, 1)


def bench_pipeline(source: str, frames: int, console: Console, in_flight: int = 8) -> dict:
    stack = Stack(say=lambda text: console.print(f"[dim]{text}[/dim]"), fresh_redis=True)
    with stack:
        client = triton.InferenceServerClient(stack.triton_grpc)
        contract = contracts.fetch(client, stack.model.name, 60)
        client.close()
        model_onnx = stack.workdir / "model_repository" / stack.model.name / "1" / "model.onnx"
        console.print("baseline: single-process loop ...")
        result = {"baseline": baseline(source, frames, model_onnx, contract)}
        console.print("model only: Triton ...")
        result["model_only"] = model_only(source, frames, stack.triton_grpc, contract, in_flight)
        console.print("pipeline: the whole stack ...")
        result.update(_pipeline(stack, source, frames))
    base, model, pipe = result["baseline"], result["model_only"], result["pipeline"]
    result["ratios"] = {
        "pipeline_over_baseline": round(pipe["fps"] / base["fps"], 3),
        "pipeline_over_model_only": round(pipe["fps"] / model["fps"], 3),
    }
    result["frames"] = frames
    return result


def _pipeline(stack: Stack, source: str, frames: int, monitor_tail: bool = False) -> dict:
    """monitor_tail: also wait for the drift monitor (off the critical path, it may lag) to
    have seen the last frame, and give its CPU per frame over all the frames."""
    stack.use_camera({"id": CAMERA, "source": source, "pace": "fast", "max_frames": frames})
    processes = {
        name: psutil.Process(p.pid) for name, p in stack.processes.items() if p.pid is not None
    }
    before = {name: tree_cpu_seconds(p) for name, p in processes.items()}
    tally = Tally(CAMERA)
    topics = {"frames": stack.topics.frames, "detections": stack.topics.detections}
    reader = TopicReader(stack.bootstrap, list(topics.values()))
    ingest = stack.start_service("ingest")
    processes["ingest"] = psutil.Process(ingest.pid)
    # From ready on: the interpreter's start-up (imports: ~1 s of CPU) is not a per-frame cost.
    # Its camera starts a moment before, so the first few frames' CPU is left out.
    stack.wait_ready("ingest")
    before["ingest"] = tree_cpu_seconds(processes["ingest"])
    deadline = time.monotonic() + 600
    try:
        while len(tally.detected) < frames and time.monotonic() < deadline:
            reader.poll_into(tally, topics, lambda _alert: None)
    finally:
        reader.close()
    cpu = {
        name: round((tree_cpu_seconds(p) - before[name]) * 1000 / frames, 2)
        for name, p in processes.items()
    }
    summary = tally.summary()
    tail = {}
    if monitor_tail and "monitor" in processes:
        tail["monitor"] = _monitor_tail(stack, processes["monitor"], before["monitor"], frames)
    return {
        **tail,
        "pipeline": {
            "fps": summary["fps"],
            "latency_ms": summary["latency_ms"],
            "frames_lost": summary["frames_lost"],
        },
        "cpu_ms_per_frame": cpu,
        "cpu_ms_per_frame_outside_model": round(
            sum(v for k, v in cpu.items() if k not in ("triton", "broker", "redis")), 2
        ),
        "peak_rss_mb": {name: _peak_rss_mb(p) for name, p in processes.items()},
    }


def bench_tracing(source: str, frames: int, console: Console) -> dict:
    """The same pipeline run twice in one go: tracing off, then on at 100% sampling exporting
    OTLP/gRPC to an in-process receiver (standing in for Jaeger)."""
    import os

    from steadyeye.otlp_sink import OtlpReceiver

    receiver = OtlpReceiver().start()
    tracing_env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{receiver.port}",
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "1.0",
    }
    saved = {name: os.environ.get(name) for name in tracing_env}
    result: dict = {"frames": frames}
    try:
        for mode in ("off", "on"):
            if mode == "on":
                os.environ.update(tracing_env)
            console.print(f"pipeline with tracing {mode} ...")
            with Stack(say=lambda t: console.print(f"[dim]{t}[/dim]"), fresh_redis=True) as stack:
                run = _pipeline(stack, source, frames)
            result[f"tracing_{mode}"] = {
                **run["pipeline"],
                "cpu_ms_per_frame_outside_model": run["cpu_ms_per_frame_outside_model"],
            }
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        receiver.stop()
    result["spans_received"] = len(receiver.spans)
    off, on = result["tracing_off"], result["tracing_on"]
    result["ratios"] = {
        "fps_on_over_off": round(on["fps"] / off["fps"], 3),
        "cpu_on_over_off": round(
            on["cpu_ms_per_frame_outside_model"] / off["cpu_ms_per_frame_outside_model"], 3
        ),
    }
    return result


def _monitor_tail(stack: Stack, process: psutil.Process, cpu_before: float, frames: int) -> dict:
    """Once the monitor has seen the last frame (or after 120 s): how far it got, whether it
    learned its reference within the run, and its CPU per frame over all the frames."""
    admin = stack.redis_admin()
    state: dict = {}
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        raw = admin.get(f"{MONITOR_STATE}{CAMERA}")
        state = json.loads(raw) if raw else {}
        if state.get("last_frame_id", -1) >= frames - 1:
            break
        time.sleep(0.2)
    return {
        "frames_seen": state.get("last_frame_id", -1) + 1,
        "reference_ids": [r["id"] for r in state.get("references", {}).values()],
        "episode_open": state.get("episode_start") is not None,
        "cpu_ms_per_frame": round((tree_cpu_seconds(process) - cpu_before) * 1000 / frames, 2),
    }


def _pinned_state(source: str, warmup: int, console: Console) -> str:
    """The monitor's state for the bench camera holding a reference learned from the clip's
    first `warmup` frames by the monitor's own code (the model as the stack serves it), as
    `steadyeye monitor pin` would give it one; no frame seen yet."""
    from services.core.settings import load
    from services.monitor.camera import CameraMonitor
    from services.monitor.settings import MonitorSettings
    from steadyeye.bench.monitor import prepare

    settings = load(MonitorSettings).model_copy(update={"warmup_frames": warmup})
    console.print(f"the monitor's reference from the first {warmup} frames ...")
    monitor = CameraMonitor(CAMERA, settings)
    for m in prepare(source, warmup, console)[0]:
        monitor.observe(m.ref.frame_id, m.quality, m.model.version, list(m.detections),
                        (m.ref.width, m.ref.height))  # fmt: skip
    if monitor.reference is None:
        raise RuntimeError(f"no reference learned from {warmup} frames")
    return json.dumps({**monitor.to_state(), "last_frame_id": -1, "previous_boxes": None})


def busy_cpu_seconds() -> float:
    """CPU seconds the whole machine has been busy (every process)."""
    t = psutil.cpu_times()
    return t.user + t.nice + t.system + t.irq + t.softirq


def _measured_run(stack: Stack, source: str, frames: int) -> dict:
    """_pipeline with the monitor's tail, and the CPU the rest of the machine used meanwhile
    (cores busy outside this process and the stack's): these machines are shared."""
    me = psutil.Process()

    def ours() -> float:
        return sum(stack_cpu_seconds(stack).values()) + me.cpu_times().user + me.cpu_times().system

    system, own, started = busy_cpu_seconds(), ours(), time.monotonic()
    run = _pipeline(stack, source, frames, monitor_tail=True)
    elapsed = time.monotonic() - started
    others = (busy_cpu_seconds() - system) - (ours() - own)
    return {**run, "background_cpu_cores": round(max(0.0, others) / elapsed, 2)}


def bench_monitor_overhead(
    source: str,
    frames: int,
    console: Console,
    warmup_frames: int | None = None,
    rounds: int = 1,
    pinned: bool = False,
) -> dict:
    """The same pipeline run without the drift monitor and with it, `rounds` times in one go,
    the order alternating (without-with, with-without, ...) so that a machine getting slower or
    faster during the run weighs on both alike. The monitor's warm-up (default: a third of the
    frames, at least 50) is short enough that it learns, calibrates and tests within each run.
    pinned: the monitor starts instead with a reference learned beforehand from the clip's
    first `warmup` frames, so it tests every frame of the runs: its steady cost, no warm-up and
    no calibration in them."""
    import os

    warmup = warmup_frames or max(50, frames // 3)
    saved = os.environ.get("STEADYEYE_MONITOR_WARMUP_FRAMES")
    os.environ["STEADYEYE_MONITOR_WARMUP_FRAMES"] = str(warmup)
    state = _pinned_state(source, warmup, console) if pinned else None
    runs: dict[str, list[dict]] = {"without": [], "with": []}
    monitor: list[dict] = []
    try:
        for round_ in range(rounds):
            for mode in ("without", "with") if round_ % 2 == 0 else ("with", "without"):
                console.print(f"round {round_ + 1}/{rounds}: pipeline {mode} the drift monitor")
                with Stack(say=lambda t: console.print(f"[dim]{t}[/dim]"), fresh_redis=True,
                           monitor=mode == "with") as stack:  # fmt: skip
                    if state is not None and mode == "with":
                        stack.redis_admin().set(f"{MONITOR_STATE}{CAMERA}", state)
                    run = _measured_run(stack, source, frames)
                runs[mode].append(
                    {
                        **run["pipeline"],
                        "cpu_ms_per_frame_outside_model": run["cpu_ms_per_frame_outside_model"],
                        "cpu_ms_per_frame": run["cpu_ms_per_frame"],
                        "background_cpu_cores": run["background_cpu_cores"],
                    }
                )
                if "monitor" in run:
                    monitor.append(run["monitor"])
    finally:
        if saved is None:
            os.environ.pop("STEADYEYE_MONITOR_WARMUP_FRAMES", None)
        else:
            os.environ["STEADYEYE_MONITOR_WARMUP_FRAMES"] = saved

    def median(mode: str, key: str) -> float:
        return float(np.median([r[key] for r in runs[mode]]))

    per_round = [
        round(w["fps"] / wo["fps"], 3) for w, wo in zip(runs["with"], runs["without"], strict=True)
    ]
    outside = "cpu_ms_per_frame_outside_model"
    if state is not None:  # the monitor tested with it throughout, rather than learning anew
        pinned_ids = [r["id"] for r in json.loads(state)["references"].values()]
        kept = all(m["reference_ids"] == pinned_ids for m in monitor)
        monitor = [{**m, "pinned_reference_kept": kept} for m in monitor]
    return {
        "frames": frames,
        "monitor_warmup_frames": warmup,
        "monitor_reference": "pinned" if pinned else "learned in the run",
        "rounds": rounds,
        "monitor_without": runs["without"],
        "monitor_with": runs["with"],
        "monitor": monitor,
        "ratios": {
            "fps_with_over_without": round(median("with", "fps") / median("without", "fps"), 3),
            "fps_with_over_without_per_round": per_round,
            "cpu_outside_model_with_over_without": round(
                median("with", outside) / median("without", outside), 3
            ),
        },
    }
