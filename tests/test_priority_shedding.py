"""Camera priority: while the pipeline cannot keep up with every camera, low-priority cameras
give way first and high-priority ones keep flowing. Four live cameras (HTTP streams of the
sample clip, read as fast as they decode, far faster than this machine infers), two of each
priority, through an ingest of their own beside the running stack, with a small backlog limit.
"""

from __future__ import annotations

import re
import time
import urllib.request
import uuid
from collections import Counter

import pytest

from services.core.messages import decode
from steadyeye.v1.frames_pb2 import Frame

pytestmark = pytest.mark.stack
RUN_S = 20.0
LIMIT = 40  # frames waiting for inference, all cameras together


def dropped(port: int) -> Counter[str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    pattern = r'^steadyeye_ingest_frames_dropped_total\{camera="([^"]+)"\} ([0-9.e+]+)$'
    return Counter({m[1]: float(m[2]) for m in re.finditer(pattern, text, re.MULTILINE)})


def test_low_priority_cameras_give_way_first_and_high_priority_ones_keep_flowing(
    stack, pipeline, http_video, tmp_path
):
    run = uuid.uuid4().hex[:6]
    high = [f"high-{run}-{k}" for k in range(2)]
    low = [f"low-{run}-{k}" for k in range(2)]
    cameras = tmp_path / "cameras.yaml"
    cameras.write_text("cameras:\n" + "".join(
        f"- {{id: {c}, source: '{http_video}', priority: {'high' if c in high else 'low'}}}\n"
        for c in (*high, *low)
    ))  # fmt: skip
    key = f"ingest-priority-{run}"
    try:
        stack.start_service("ingest", instance=key, env={
            "STEADYEYE_INGEST_CAMERAS_FILE": str(cameras),
            "STEADYEYE_INGEST_MAX_BACKLOG_FRAMES": str(LIMIT),
        })  # fmt: skip
        port = stack.service_ports[key]
        time.sleep(RUN_S)
        lost = dropped(port)
    finally:
        stack.stop_service(key)

    # Frames each camera published (read back from the topic, ids counted once).
    ids: dict[str, set[int]] = {camera: set() for camera in (*high, *low)}

    def count(record) -> bool:
        camera = (record.key or b"").decode()
        if camera in ids:
            ids[camera].add(decode(record.value, record.headers, Frame).ref.frame_id)
        return False

    pipeline.read(pipeline.topics.frames, count, 1, 10)  # everything there, for 10 s
    sent = {camera: len(found) for camera, found in ids.items()}
    # High cameras publish while the backlog is under the whole limit, low ones only under
    # their share of it (0.5). Each time inference drains the backlog to d < 20, the four
    # share the 20 - d frames up to the low share and the two high ones alone take the next 20:
    # three to one at a full drain, more at a shallower one (frames held while backlogged and
    # threads racing past the check lower it). Compared by priority, not camera by camera: how
    # the frames of one priority split between its cameras is thread scheduling. (Measured
    # here: 279 against 58 frames in 20 s, and 387 against 153 on a busy CI run.) Every camera
    # reads far faster than the pipeline infers, so all of them drop frames.
    high_sent, low_sent = sum(sent[c] for c in high), sum(sent[c] for c in low)
    assert high_sent > 1.5 * low_sent, (sent, dict(lost))
    assert all(sent[c] > 0 for c in high) and all(lost[c] > 0 for c in low), (sent, dict(lost))
