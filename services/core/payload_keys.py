"""Where each hop parks a frame's payloads, and which keys a record may name.

A claim-check key arrives inside a record, so it is input like any other: a hostile or buggy
producer could name tracker state, another camera's frame or a path outside the store. A reader
accepts a key only when it is exactly one the producing hop would have written for that record's
own camera and frame; anything else is a PoisonMessage, read and deleted never.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from steadyeye.v1.common_pb2 import FrameRef

PREFIX = "steadyeye"


@dataclass(frozen=True)
class Namespace:
    """One hop's payloads: `steadyeye:<kind>:<camera_id>:<frame_id>` plus an optional token.

    The camera id may contain ':', but the frame id is digits and the token is fixed hex, so a
    key parses one way only: matching the record's camera and frame means it is that record's."""

    kind: str
    token_hex_chars: int = 0  # a random suffix: one key per output (see ready_key)

    def key(self, camera_id: str, frame_id: int) -> str:
        base = f"{PREFIX}:{self.kind}:{camera_id}:{frame_id}"
        if self.token_hex_chars:
            return f"{base}:{secrets.token_hex(self.token_hex_chars // 2)}"
        return base

    def of(self, ref: FrameRef) -> Scope:
        return Scope(self, ref.camera_id, ref.frame_id)


@dataclass(frozen=True)
class Scope:
    """The keys of one namespace that belong to one record (its camera and frame)."""

    namespace: Namespace
    camera_id: str
    frame_id: int

    def owns(self, key: str) -> bool:
        base = f"{PREFIX}:{self.namespace.kind}:{self.camera_id}:{self.frame_id}"
        if not key.startswith(base):
            return False
        rest, chars = key[len(base) :], self.namespace.token_hex_chars
        return rest == "" if not chars else re.fullmatch(f":[0-9a-f]{{{chars}}}", rest) is not None

    def __str__(self) -> str:
        return f"{self.namespace.kind} payloads of camera {self.camera_id!r} frame {self.frame_id}"


# ingest -> preprocess (and alert's snapshots): one key per frame, so a retry overwrites it.
FRAMES = Namespace("frame")
# preprocess -> inference: one key per output, since inference deletes a tensor once it is done
# with it and a redelivered frame's second ReadyFrame must not find its tensor gone.
READY = Namespace("ready", token_hex_chars=8)


def frame_key(camera_id: str, frame_id: int) -> str:
    """Where ingest parks a frame's pixels; alert reads them back for its snapshots."""
    return FRAMES.key(camera_id, frame_id)
