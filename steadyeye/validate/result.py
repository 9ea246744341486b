"""What a validation produces: each served model's answers, the checks in the order results
list them, and the frames where the two models disagree most."""

from __future__ import annotations

from dataclasses import dataclass, field

from services.contract import ModelContract
from services.rollout.agreement import FrameDetections

PASS, FAIL, SKIPPED = "pass", "fail", "skipped"
CHECKS = (
    "import",
    "contract",
    "latency",
    "memory",
    "detections_per_frame",
    "boxes",
    "classes",
    "map",
)  # the order results list them in
REPORT_FRAMES = 6


@dataclass
class Side:
    """One served model: how to call it, its contract, what it returned per frame."""

    role: str  # "reference" or "candidate"
    name: str
    version: str
    config: dict
    contract: ModelContract
    latencies_ms: list[float] = field(default_factory=list)
    detections: list[FrameDetections] = field(default_factory=list)
    served_version: str = ""
    server_stats: dict[str, float] = field(default_factory=dict)  # Triton's, during the frames


def check(status: str, reason: str, **figures: object) -> dict:
    return {"status": status, "reason": reason, "figures": figures}


def in_order(checks: dict[str, dict]) -> dict[str, dict]:
    order = [*CHECKS, *(name for name in checks if name not in CHECKS)]
    return {name: checks[name] for name in order if name in checks}


def worst_frames(disagreement: list[int], gap: int) -> list[dict]:
    """Up to REPORT_FRAMES frames with the most disagreements, at least `gap` frames apart."""
    worst: list[int] = []
    for i in sorted(range(len(disagreement)), key=lambda i: -disagreement[i]):
        if disagreement[i] <= 0 or len(worst) == REPORT_FRAMES:
            break
        if all(abs(i - j) >= gap for j in worst):
            worst.append(i)
    return [{"index": i, "disagreements": disagreement[i]} for i in worst]
