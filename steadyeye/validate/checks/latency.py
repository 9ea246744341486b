"""latency: p50/p95 of each model's round trips; a failure is measured again before it counts,
since on a shared host a burst of other work can land on one model's requests."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from services.rollout.policy import Latency
from steadyeye.validate.result import FAIL, PASS, Side, check

# Round trips of (reference, candidate) on the first N frames, the two interleaved again.
MeasureAgain = Callable[[int], tuple[list[float], list[float]]]


def _figures(values_ms: list[float], side: Side) -> dict:
    values = np.array(values_ms)
    stats = side.server_stats
    count = stats.get("success_count") or 0

    def server_ms(key: str) -> float | None:
        return round(stats[f"{key}_ns"] / count / 1e6, 2) if count else None

    return {
        "p50_ms": round(float(np.percentile(values, 50)), 2),
        "p95_ms": round(float(np.percentile(values, 95)), 2),
        "mean_ms": round(float(values.mean()), 2),
        "requests": len(values),
        # Triton's own statistics over the first pass (with any other traffic it served):
        # mean time per request in the model and in its queue.
        "server_compute_ms": server_ms("compute_infer"),
        "server_queue_ms": server_ms("queue"),
    }


def _judge(r: dict, c: dict, policy: Latency) -> tuple[float | None, list[str]]:
    ratio = c["p95_ms"] / r["p95_ms"] if r["p95_ms"] else None
    problems = []
    limit = policy.max_p95_ratio
    if limit is not None and ratio is not None and ratio > limit:
        problems.append(f"p95 {ratio:.2f}x the serving model's (max {limit}x)")
    if policy.max_p95_ms is not None and c["p95_ms"] > policy.max_p95_ms:
        problems.append(f"p95 {c['p95_ms']} ms (max {policy.max_p95_ms} ms)")
    return ratio, problems


def latency_check(
    reference: Side,
    candidate: Side,
    policy: Latency,
    measure_again: MeasureAgain,
    say: Callable[[str], None],
) -> dict:
    r = _figures(reference.latencies_ms, reference)
    c = _figures(candidate.latencies_ms, candidate)
    ratio, problems = _judge(r, c, policy)
    extra: dict = {}
    if problems and policy.confirm_failures:
        say(f"latency: {'; '.join(problems)}: measuring again")
        first = {"reference": r, "candidate": c, "p95_ratio": ratio, "problems": problems}
        again_r, again_c = measure_again(min(len(reference.latencies_ms), 100))
        r, c = _figures(again_r, reference), _figures(again_c, candidate)
        ratio, problems = _judge(r, c, policy)
        extra["first_round"] = first
    reason = "; ".join(problems) or (
        f"p95 {c['p95_ms']} ms vs {r['p95_ms']} ms serving ({ratio:.2f}x)"
        if ratio is not None
        else "measured"
    )
    if extra:
        reason += " (measured twice: the first round failed)"
    return check(
        FAIL if problems else PASS,
        reason,
        measured="per-frame gRPC round trip to Triton, batch 1, sequential, the two models "
        "interleaved frame by frame (letterboxing excluded)",
        reference=r,
        candidate=c,
        p95_ratio=None if ratio is None else round(ratio, 3),
        **extra,
    )
