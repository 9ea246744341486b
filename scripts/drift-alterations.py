#!/usr/bin/env python
"""Every alteration of steadyeye/bench/alterations.py through the whole embedded pipeline with
`steadyeye bench drift`: the sample clip (looped) is the camera, unaltered until --change-at,
altered after it; plus the unaltered clip for --unaltered-frames after the warm-up. Prints a
Markdown table (the one in docs/monitoring.md) and keeps each run's JSON and plot in --out.

    .venv/bin/python scripts/drift-alterations.py --out /tmp/drift-alterations
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from services.core.settings import load
from steadyeye.assets import MediaSettings, media_file
from steadyeye.bench.alterations import ALTERATIONS, other_scene


def write(path: Path, clip: list[np.ndarray], frames: int, change_at: int, alter) -> None:
    h, w = clip[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (w, h))
    for t in range(frames):
        image = clip[t % len(clip)]
        writer.write(alter(image, t) if alter and t >= change_at else image)
    writer.release()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--change-at", type=int, default=800)
    parser.add_argument("--after", type=int, default=200, help="altered frames per run")
    parser.add_argument("--unaltered-frames", type=int, default=2500)
    parser.add_argument("--only", help="comma-separated alterations to run (or 'unaltered')")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    media = load(MediaSettings)
    capture = cv2.VideoCapture(str(media_file(media, "vtest.avi")))
    clip = []
    while (frame := capture.read())[0]:
        clip.append(frame[1])
    bus = cv2.imread(str(media_file(media, "bus.jpg")))
    runs = {**ALTERATIONS, "another scene": other_scene(bus), "unaltered": None}
    rows = []
    for name, alter in runs.items():
        if args.only and name not in args.only.split(","):
            continue
        slug = name.replace(" ", "-")
        with tempfile.TemporaryDirectory() as scratch:
            video = Path(scratch) / f"{slug}.avi"
            frames = (
                args.warmup + args.unaltered_frames
                if alter is None
                else args.change_at + args.after
            )
            write(video, clip, frames, args.change_at, alter)
            command = [sys.executable, "-m", "steadyeye.cli", "bench", "drift", "--json",
                       "--stream", str(video), "--warmup-frames", str(args.warmup),
                       "--plot", str(args.out / f"{slug}.png")]  # fmt: skip
            if alter is not None:
                command += ["--change-at-frame", str(args.change_at)]
            print(f"{name}: {frames} frames ...", file=sys.stderr, flush=True)
            env = {**os.environ, "STEADYEYE_STACK_WORKDIR": str(Path(scratch) / "stack")}
            done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
        if done.returncode:
            sys.exit(f"{name}: bench drift failed:\n{done.stderr[-3000:]}")
        result = json.loads(done.stdout)
        (args.out / f"{slug}.json").write_text(json.dumps(result, indent=2))
        after = [a for a in result["alarms"] if alter is not None and a["frame"] >= args.change_at]
        rows.append((name, result, after[0]["signals"] if after else []))
    print("| stream | frames tested | false alarms | first alarm after the change | signals |")
    print("|---|---|---|---|---|")
    for name, result, signals in rows:
        delay = result["first_alarm_after_change"]
        tested = result["frames"] - result["warmup_frames"]
        print(f"| {name} | {tested} | {result['false_alarms']} | "
              f"{'-' if delay is None else delay} | {', '.join(signals) or '-'} |")  # fmt: skip


if __name__ == "__main__":
    main()
