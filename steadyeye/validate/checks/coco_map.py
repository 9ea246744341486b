"""map: COCO mAP of both models on labelled frames; the candidate may lose at most max_drop."""

from __future__ import annotations

from collections.abc import Sequence

from services.rollout.policy import MeanAP
from steadyeye.validate.cocoeval import mean_ap
from steadyeye.validate.result import FAIL, PASS, SKIPPED, Side, check


def map_check(
    labels: dict, image_ids: Sequence[int], reference: Side, candidate: Side, policy: MeanAP
) -> dict:
    ids = list(image_ids[: len(reference.detections)])
    try:
        r = mean_ap(labels, ids, reference.detections, reference.contract.class_names)
        c = mean_ap(labels, ids, candidate.detections, candidate.contract.class_names)
    except ImportError as exc:
        return check(SKIPPED, str(exc))
    drop = r["map"] - c["map"]
    problems = []
    if drop > policy.max_drop:
        problems.append(
            f"mAP {c['map']:.3f} vs {r['map']:.3f} serving: "
            f"{drop:.3f} lower (max drop {policy.max_drop})"
        )
    if policy.min_map is not None and c["map"] < policy.min_map:
        problems.append(f"mAP {c['map']:.3f} (min {policy.min_map})")
    return check(
        FAIL if problems else PASS,
        "; ".join(problems) or f"mAP {c['map']:.3f} vs {r['map']:.3f} serving",
        reference=r,
        candidate=c,
        drop=round(drop, 4),
        images=len(ids),
        evaluator=r["evaluator"],
    )
