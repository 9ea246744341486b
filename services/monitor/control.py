"""What the monitor shares in Redis besides its state: operators' commands (pin a reference,
accept a change) and each camera's signal history (what `steadyeye monitor status` shows).

Commands go through Redis rather than Kafka so that they need no producer and reach whichever
replica owns the camera now: the owner picks them up within about a second (its tick)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import redis

COMMANDS_KEY = "steadyeye:monitor:commands"  # hash: camera -> JSON command
HISTORY_PREFIX = "steadyeye:monitor:history:"  # stream per camera, entry id = frame id


def history_key(camera_id: str) -> str:
    return HISTORY_PREFIX + camera_id


def send_command(client: redis.Redis, camera_id: str, command: dict[str, Any]) -> None:
    """The latest command per camera wins."""
    client.hset(COMMANDS_KEY, camera_id, json.dumps(command))


def pending_commands(client: redis.Redis) -> dict[str, dict[str, Any]]:
    raw = client.hgetall(COMMANDS_KEY)
    return {camera.decode(): json.loads(command) for camera, command in raw.items()}


@dataclass(frozen=True)
class HistoryPoint:
    frame_id: int
    z: np.ndarray  # per signal, against the reference
    ratio: np.ndarray  # per signal, CUSUM statistic / threshold (1: alarm)


def encode_point(z: np.ndarray, ratio: np.ndarray) -> dict[str, bytes]:
    """~100 bytes a point: half floats are plenty for a plot."""
    return {
        "z": base64.b64encode(z.astype(np.float16).tobytes()),
        "ratio": base64.b64encode(ratio.astype(np.float16).tobytes()),
    }


def read_history(client: redis.Redis, camera_id: str) -> list[HistoryPoint]:
    points = []
    for entry_id, fields in client.xrange(history_key(camera_id)):
        frame_id = int(entry_id.decode().partition("-")[0])
        z, ratio = (
            np.frombuffer(base64.b64decode(fields[name]), np.float16).astype(float)
            for name in (b"z", b"ratio")
        )
        points.append(HistoryPoint(frame_id, z, ratio))
    return points
