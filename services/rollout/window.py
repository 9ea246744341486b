"""A rollout's current window of evidence: frames both versions answered, paired up.

Inference publishes one version's Detections downstream and, for a deterministic sample of
frames, the other version's to the shadow topic (services/rollout/state.py `shadow_version`),
so the controller knows which frames to wait for and pairs them by (camera, frame) and version,
whichever topic each half came from. The window's counts are saved in Redis with the consumer's
offsets (before each commit), so a restarted controller resumes the window it was in.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from dataclasses import dataclass, field

import redis

from services.rollout.agreement import Agreement, FrameDetections, compare
from services.rollout.policy import Agreement as AgreementPolicy
from services.rollout.usage import Snapshot, VersionUsage
from steadyeye.v1.detections_pb2 import Detections


def window_key(model: str) -> str:
    return f"steadyeye:rollout:window:{model}"


@dataclass
class Window:
    rollout_id: str
    number: int = 1  # 1-based, within the rollout
    failed_windows: int = 0  # judged before this one without passing
    opened_at: float = field(default_factory=time.time)
    agreement: Agreement = field(default_factory=Agreement)
    drift_events: int = 0
    # Each replica's request totals when the window opened (services/rollout/usage.py).
    baseline: dict[str, Snapshot] = field(default_factory=dict)
    class_names: dict[int, str] = field(default_factory=dict)

    def next(self, baseline: dict[str, Snapshot]) -> Window:
        return Window(self.rollout_id, self.number + 1, self.failed_windows + 1, baseline=baseline)

    def to_json(self) -> str:
        return json.dumps(
            {
                "rollout_id": self.rollout_id,
                "number": self.number,
                "failed_windows": self.failed_windows,
                "opened_at": self.opened_at,
                "agreement": self.agreement.to_json(),
                "drift_events": self.drift_events,
                "baseline": {
                    replica: {v: u.to_json() for v, u in versions.items()}
                    for replica, versions in self.baseline.items()
                },
                "class_names": {str(k): n for k, n in self.class_names.items()},
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, raw: str | bytes) -> Window:
        data = json.loads(raw)
        return cls(
            rollout_id=data["rollout_id"],
            number=int(data["number"]),
            failed_windows=int(data["failed_windows"]),
            opened_at=float(data["opened_at"]),
            agreement=Agreement.from_json(data["agreement"]),
            drift_events=int(data["drift_events"]),
            baseline={
                replica: {v: VersionUsage.from_json(u) for v, u in versions.items()}
                for replica, versions in data["baseline"].items()
            },
            class_names={int(k): n for k, n in data["class_names"].items()},
        )


def load(client: redis.Redis, model: str) -> Window | None:
    raw = client.get(window_key(model))
    return None if raw is None else Window.from_json(raw)


def save(client: redis.Redis, model: str, window: Window) -> None:
    client.set(window_key(model), window.to_json())


def discard(client: redis.Redis, model: str) -> None:
    client.unlink(window_key(model))


class Pairs:
    """Halves waiting for their other half; the oldest go first beyond `limit` (a frame whose
    other request failed never completes). A frame paired recently is not paired again: a
    replica restarted after publishing redelivers its frames, and each counts once."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._waiting: OrderedDict[tuple[str, int], dict[str, Detections]] = OrderedDict()
        self._paired: OrderedDict[tuple[str, int], None] = OrderedDict()

    def add(
        self, message: Detections, serving: str, candidate: str
    ) -> tuple[Detections, Detections] | None:
        """(serving's, candidate's) once both halves of the frame are in, else None."""
        if message.degraded:
            # A fallback tier answered (docs/design/degradation.md §4.5), not the rolled-out
            # model, though its version may read like one of the two: it is no half.
            return None
        key = (message.ref.camera_id, message.ref.frame_id)
        if key in self._paired:
            return None
        halves = self._waiting.setdefault(key, {})
        halves[message.model.version] = message
        if serving in halves and candidate in halves:
            del self._waiting[key]
            self._paired[key] = None
            if len(self._paired) > self._limit:
                self._paired.popitem(last=False)
            return halves[serving], halves[candidate]
        if len(self._waiting) > self._limit:
            self._waiting.popitem(last=False)
        return None

    def clear(self) -> None:
        self._waiting.clear()
        self._paired.clear()

    def __len__(self) -> int:
        return len(self._waiting)


def agreement_of(serving: Detections, candidate: Detections, policy: AgreementPolicy) -> Agreement:
    """Every box each version returned: the served ones and those below the serving threshold
    (Detections.candidates), which the agreement's margin looks at."""
    pair = tuple(FrameDetections.of([*d.detections, *d.candidates]) for d in (serving, candidate))
    return compare([pair], policy.iou, policy.serve_score, policy.margin)
