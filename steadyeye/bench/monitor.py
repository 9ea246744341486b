"""`steadyeye bench monitor`: what the drift monitor costs, CPU per frame and memory per camera,
side by side with preprocess's quality meter and the model's inference on the same frames in
the same run (the baselines: compare the ratios, not the milliseconds across runs).

The frames are the sample clip's (looped when more are asked for), each letterboxed and
measured by preprocess's own QualityMeter on the letterboxed area, and run through the model as
the stack serves it: the shared export imported by `steadyeye model import`, its fused ONNX graph
(decoding and NMS included) run by ONNX Runtime on one thread like each of Triton's instances,
the boxes mapped back by inference's own code. The Detections messages this gives go through the
monitor service's own MonitorHandler (gauges and history included), `cameras` streams
interleaved, its state and history in a real Redis, with the loop's commit (before_commit, which
snapshots the state) after each round of one frame per camera, as after a batch.

Memory: the Python heap of CameraMonitors (tracemalloc) fed the same frames, at the end of the
warm-up (the largest it holds) and while testing; the state the handler snapshots to Redis
(its JSON, and what Redis holds for it) and the history stream per point.

It prints figures and asserts nothing: these machines are noisy.
"""

from __future__ import annotations

import gc
import json
import secrets
import tempfile
import time
import tracemalloc
from pathlib import Path

import cv2
import numpy as np
import redis
from rich.console import Console

from services.core.settings import load
from services.inference.boxes import to_detections
from services.inference.settings import InferenceSettings
from services.monitor import control
from services.monitor.camera import CameraMonitor
from services.monitor.handler import MonitorHandler
from services.monitor.settings import MonitorSettings
from services.preprocess.letterbox import letterbox
from services.preprocess.quality import QualityMeter
from services.preprocess.settings import PreprocessSettings
from steadyeye.assets import ModelSettings, model_file
from steadyeye.local_model import LocalModel
from steadyeye.v1.common_pb2 import FrameRef
from steadyeye.v1.detections_pb2 import Detections, ModelRef
from steadyeye.v1.drift_pb2 import DriftEvent, DriftState
from steadyeye.v1.frames_pb2 import ReadyFrame

MODEL_VERSION = "1"  # what Triton reports for the imported model
STATE_KEY = "steadyeye:state:monitor:"  # the handler's StateStore("monitor") keys
STARTED = DriftState.DRIFT_STATE_STARTED


def _ms(samples_ns: list[int] | list[float]) -> dict[str, float]:
    values = np.asarray(samples_ns, float) / 1e6
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return {
        "mean": round(float(values.mean()), 4),
        "p50": round(float(p50), 4),
        "p95": round(float(p95), 4),
        "p99": round(float(p99), 4),
    }


def _read(capture: cv2.VideoCapture, source: str) -> tuple[cv2.VideoCapture, np.ndarray]:
    """The next frame, from the start again at the end of the clip."""
    ok, image = capture.read()
    if not ok:
        capture.release()
        capture = cv2.VideoCapture(source)
        ok, image = capture.read()
        if not ok:
            raise RuntimeError(f"no frame could be read from {source}")
    return capture, image


def prepare(source: str, frames: int, console: Console) -> tuple[list[Detections], dict]:
    """The clip's frames as the monitor receives them (camera id left empty), and the CPU per
    frame of the quality meter and of the model's inference on them (ns)."""
    meter = QualityMeter(PreprocessSettings.model_fields["frozen_threshold"].default)
    serving = load(InferenceSettings)
    messages: list[Detections] = []
    quality_ns: list[int] = []
    model_ns: list[int] = []
    with tempfile.TemporaryDirectory() as scratch:
        console.print("importing the model ...")
        settings = load(ModelSettings)
        model = LocalModel(model_file(settings), settings.family, Path(scratch), settings.name, 1)
    contract, session = model.contract, model.session
    capture = cv2.VideoCapture(source)
    capture, first = _read(capture, source)
    session.run(None, {contract.input_name: letterbox(first, contract).image[None]})  # warm
    capture.release()
    capture = cv2.VideoCapture(source)
    start_ms = int(time.time() * 1000)
    console.print(f"{frames} frames: quality meter and model ...")
    for frame_id in range(frames):
        capture, image = _read(capture, source)
        boxed = letterbox(image, contract)
        t0 = time.process_time_ns()
        quality = meter.measure("clip", boxed.resized)
        t1 = time.process_time_ns()
        boxes, scores, classes, count = session.run(None, {contract.input_name: boxed.image[None]})
        t2 = time.process_time_ns()
        quality_ns.append(t1 - t0)
        model_ns.append(t2 - t1)
        height, width = image.shape[:2]
        ref = FrameRef(frame_id=frame_id, width=width, height=height)
        ref.capture_time.FromMilliseconds(start_ms + 100 * frame_id)  # the clip's 10 fps
        ready = ReadyFrame(ref=ref, scale=boxed.scale, pad_x=boxed.pad_x, pad_y=boxed.pad_y)
        # As inference splits them: served detections, and candidates below the serving score.
        found = (boxes[0], scores[0], classes[0], int(count[0, 0]), contract)
        detections = to_detections(ready, *found, serving.min_score)
        candidates = to_detections(ready, *found, serving.candidate_min_score,
                                   below=serving.min_score)  # fmt: skip
        messages.append(Detections(ref=ref, model=ModelRef(name=contract.name,
                                   version=MODEL_VERSION), detections=detections,
                                   quality=quality, candidates=candidates))  # fmt: skip
    capture.release()
    return messages, {"quality_meter": quality_ns, "model": model_ns}


def _for_camera(template: Detections, camera_id: str) -> Detections:
    message = Detections()
    message.CopyFrom(template)
    message.ref.camera_id = camera_id
    return message


def monitor_cpu(
    messages: list[Detections],
    cameras: list[str],
    settings: MonitorSettings,
    client: redis.Redis,
    topic: str,
) -> dict:
    """The handler on every camera's frames, interleaved; CPU per frame by phase (ns): the
    handle, plus its share of the commit that follows each round of one frame per camera."""
    handler = MonitorHandler(client, topic, settings)
    calibrate_at = settings.warmup_frames - 1  # the frame whose handle learns the reference
    phases: dict[str, list[float]] = {"learning": [], "calibration": [], "testing": []}
    handle_ns: dict[str, list[int]] = {"learning": [], "testing": []}
    commit_ns: dict[str, list[float]] = {"learning": [], "testing": []}
    started = 0
    for index, template in enumerate(messages):
        phase = (
            "learning"
            if index < calibrate_at
            else "calibration"
            if index == calibrate_at
            else "testing"
        )
        batch = [_for_camera(template, camera) for camera in cameras]
        spent = []
        for message in batch:
            t0 = time.process_time_ns()
            outputs = handler.handle(message)
            spent.append(time.process_time_ns() - t0)
            started += sum(
                isinstance(o.message, DriftEvent) and o.message.state == STARTED for o in outputs
            )
        t0 = time.process_time_ns()
        handler.before_commit()
        share = (time.process_time_ns() - t0) / len(cameras)
        phases[phase].extend(ns + share for ns in spent)
        if phase in handle_ns:
            handle_ns[phase].extend(spent)
            commit_ns[phase].append(share)
    learned = [client.get(STATE_KEY + camera) for camera in cameras]
    if not all(state and json.loads(state)["references"] for state in learned):
        raise RuntimeError("a camera has no reference after its warm-up: nothing was tested")
    result = {
        "learning_per_frame": _ms(phases["learning"]),
        "calibration_per_camera": {
            "mean": round(float(np.mean(phases["calibration"])) / 1e6, 1),
            "max": round(float(np.max(phases["calibration"])) / 1e6, 1),
        },
        "testing_per_frame": _ms(phases["testing"]),
        "split_mean": {
            f"{phase}_{part}": round(float(np.mean(samples[phase])) / 1e6, 4)
            for phase in ("learning", "testing")
            for part, samples in (("handle", handle_ns), ("commit", commit_ns))
        },
    }
    return {"cpu_ms": result, "episodes_started": started}


def redis_sizes(client: redis.Redis, cameras: list[str], settings: MonitorSettings) -> dict:
    """What Redis holds per camera after the run: its state, and its history stream, also
    filled to its cap (the run's own points written again, as the handler writes them, into
    `<first camera>-cap`)."""
    state_bytes, state_memory, history_memory, points = [], [], [], []
    for camera in cameras:
        state_bytes.append(client.strlen(STATE_KEY + camera))
        state_memory.append(client.memory_usage(STATE_KEY + camera, samples=0) or 0)
        history = control.history_key(camera)
        points.append(client.xlen(history))
        history_memory.append(client.memory_usage(history, samples=0) or 0)
    result = {
        "state_json_bytes": round(float(np.mean(state_bytes))),
        "state_redis_bytes": round(float(np.mean(state_memory))),
        "history_points": round(float(np.mean(points))),
        "history_redis_bytes": round(float(np.mean(history_memory))),
    }
    entries = client.xrange(control.history_key(cameras[0]))
    if entries:
        cap, every = settings.history_points, settings.history_every
        full = control.history_key(f"{cameras[0]}-cap")
        with client.pipeline(transaction=False) as pipe:
            for i in range(cap):
                pipe.xadd(full, entries[i % len(entries)][1], id=f"{(i + 1) * every}-1",
                          maxlen=cap, approximate=True)  # fmt: skip
            pipe.execute()
        length = client.xlen(full)
        usage = client.memory_usage(full, samples=0) or 0
        result["history_redis_bytes_at_cap"] = usage
        result["history_points_at_cap"] = length
        result["history_redis_bytes_per_point"] = round(usage / length, 1)
    return result


def _state_json_bytes(monitors: list[CameraMonitor]) -> int:
    sizes = [len(json.dumps(m.to_state(), separators=(",", ":"))) for m in monitors]
    return round(float(np.mean(sizes)))


def monitor_memory(messages: list[Detections], cameras: list[str], settings: MonitorSettings):
    """Python heap per CameraMonitor (tracemalloc) fed the same frames: at the end of the
    warm-up (just before the reference is learned: the most it holds), the transient peak of a
    calibration, and after the run (testing). Also the JSON state's size at those points."""
    monitors = [CameraMonitor(camera, settings) for camera in cameras]
    calibrate_at = settings.warmup_frames - 1
    inputs = [
        (m.ref.frame_id, m.quality, m.model.version, list(m.detections), (m.ref.width,
         m.ref.height)) for m in messages
    ]  # fmt: skip
    result: dict[str, float | int] = {}
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        for index, (frame_id, quality, version, detections, size) in enumerate(inputs):
            if index == calibrate_at:
                gc.collect()
                held = tracemalloc.get_traced_memory()[0]
                result["heap_bytes_end_of_warmup"] = round((held - base) / len(monitors))
                result["state_json_bytes_end_of_warmup"] = _state_json_bytes(monitors)
                tracemalloc.reset_peak()
                held = tracemalloc.get_traced_memory()[0]
            for monitor in monitors:
                monitor.observe(frame_id, quality, version, detections, size)
            if index == calibrate_at:
                # one camera calibrates at a time: the peak above what was held is one's
                result["calibration_peak_bytes"] = tracemalloc.get_traced_memory()[1] - held
        gc.collect()
        result["heap_bytes_testing"] = round(
            (tracemalloc.get_traced_memory()[0] - base) / len(monitors)
        )
    finally:
        tracemalloc.stop()
    result["state_json_bytes_testing"] = _state_json_bytes(monitors)
    return result


def bench_monitor(
    source: str,
    frames: int,
    cameras: int,
    console: Console,
    client: redis.Redis,
    warmup_frames: int | None = None,
) -> dict:
    settings = load(MonitorSettings)
    if warmup_frames is not None:
        settings = settings.model_copy(update={"warmup_frames": warmup_frames})
    if frames <= settings.warmup_frames:
        raise RuntimeError(
            f"{frames} frames: no more than the {settings.warmup_frames} of the warm-up"
        )
    messages, baseline_ns = prepare(source, frames, console)
    # The handler writes fixed key names per camera: camera ids no one else uses, removed after.
    run = f"bench-monitor-{secrets.token_hex(4)}"
    timed = [f"{run}-{i}" for i in range(cameras)]
    try:
        console.print(f"monitor: {cameras} cameras x {frames} frames ...")
        cpu = monitor_cpu(messages, timed, settings, client, "steadyeye.drift.v1")
        stored = redis_sizes(client, timed, settings)
    finally:
        keys = [k for c in timed for k in (STATE_KEY + c, control.history_key(c))]
        keys.append(control.history_key(f"{timed[0]}-cap"))
        client.delete(*keys)
    console.print("monitor: heap per camera (tracemalloc) ...")
    memory = monitor_memory(messages, [f"{run}-heap-{i}" for i in range(cameras)], settings)
    baseline = {name: _ms(samples) for name, samples in baseline_ns.items()}
    testing, learning = cpu["cpu_ms"]["testing_per_frame"], cpu["cpu_ms"]["learning_per_frame"]
    quality, model = baseline["quality_meter"], baseline["model"]
    calibration = cpu["cpu_ms"]["calibration_per_camera"]["mean"]
    return {
        "frames": frames,
        "cameras": cameras,
        "warmup_frames": settings.warmup_frames,
        "tested_frames": frames - settings.warmup_frames,
        "monitor_cpu_ms": cpu["cpu_ms"],
        "baseline_cpu_ms_per_frame": baseline,
        "memory_per_camera": {**memory, **stored},
        "episodes_started": cpu["episodes_started"],
        "ratios": {
            "testing_over_quality_meter": round(testing["mean"] / quality["mean"], 3),
            "testing_over_model": round(testing["mean"] / model["mean"], 4),
            "learning_over_quality_meter": round(learning["mean"] / quality["mean"], 3),
            "learning_over_model": round(learning["mean"] / model["mean"], 4),
            "calibration_in_model_frames": round(calibration / model["mean"], 1),
        },
    }
