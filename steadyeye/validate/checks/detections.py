"""detections_per_frame, boxes and classes: how far the candidate's detections agree with the
serving model's on the same frames (services.rollout.agreement), and the per-class rows."""

from __future__ import annotations

from collections.abc import Sequence

from services.rollout.agreement import Agreement, Tally
from services.rollout.policy import Agreement as AgreementPolicy
from steadyeye.validate.result import FAIL, PASS, SKIPPED, check


def _name(names: Sequence[str], k: int) -> str:
    return names[k] if 0 <= k < len(names) else str(k)


def _too_little_evidence(agreement: Agreement, policy: AgreementPolicy) -> str | None:
    """Why boxes and classes cannot pass: too few sure reference boxes to judge by."""
    evidence = agreement.boxes.ref_sure
    if evidence >= policy.min_reference_boxes:
        return None
    return (
        f"too little evidence: the serving model is sure (>= {policy.sure:g}) of "
        f"{evidence} boxes on these frames, fewer than {policy.min_reference_boxes}"
        ": give more frames, or frames with more objects"
    )


def _basis(agreement: Agreement, policy: AgreementPolicy) -> dict:
    return {
        "iou": policy.iou,
        "sure_score": round(policy.sure, 4),
        "present_score": round(policy.present, 4),
        "frames": agreement.frames,
    }


def detections_per_frame_check(agreement: Agreement, policy: AgreementPolicy) -> dict:
    ref_pf, cand_pf = agreement.served_per_frame
    ratio = agreement.detections_ratio
    low, high = policy.detections_ratio
    ok = ratio is not None and low <= ratio <= high
    return check(
        PASS if ok else FAIL,
        f"{cand_pf:.2f} per frame vs {ref_pf:.2f} serving (ratio "
        f"{'n/a' if ratio is None else f'{ratio:.2f}'}; allowed {low}-{high})",
        reference=round(ref_pf, 3),
        candidate=round(cand_pf, 3),
        ratio=None if ratio is None else round(ratio, 3),
        score=policy.serve_score,
    )


def boxes_check(agreement: Agreement, policy: AgreementPolicy) -> dict:
    thin = _too_little_evidence(agreement, policy)
    f1 = agreement.boxes.f1 or 0.0
    return check(
        FAIL if thin or f1 < policy.min_box_f1 else PASS,
        thin or f"class-agnostic F1 {f1:.3f} (min {policy.min_box_f1})",
        **agreement.boxes.figures(),
        **_basis(agreement, policy),
    )


def classes_check(
    agreement: Agreement,
    names: Sequence[str],
    candidate_names: Sequence[str],
    policy: AgreementPolicy,
) -> tuple[dict, list[dict]]:
    """The class-aware check, and one row per class (most sure reference boxes first):
    classes with at least min_class_support sure reference boxes are gated on their F1."""
    rows, weak = [], []
    classes = (
        set(agreement.per_class) | set(agreement.served_reference) | set(agreement.served_candidate)
    )
    for k in sorted(classes, key=lambda k: -agreement.per_class.get(k, Tally()).ref_sure):
        figures = agreement.per_class.get(k, Tally()).figures()
        gated = figures["reference_boxes"] >= policy.min_class_support
        failed = gated and (figures["f1"] or 0.0) < policy.min_per_class_f1
        if failed:
            weak.append(f"{_name(names, k)} {figures['f1'] or 0:.2f}")
        rows.append(
            {
                "class_id": int(k),
                "class": _name(names, k),
                "candidate_class": _name(candidate_names, k),
                "support": figures["reference_boxes"],
                "candidate_sure": figures["candidate_boxes"],
                "precision": figures["precision"],
                "recall": figures["recall"],
                "f1": figures["f1"],
                "served_reference": agreement.served_reference.get(k, 0),
                "served_candidate": agreement.served_candidate.get(k, 0),
                "gated": gated,
                "status": FAIL if failed else (PASS if gated else SKIPPED),
            }
        )
    f1 = agreement.classes.f1 or 0.0
    problems = []
    if f1 < policy.min_class_f1:
        problems.append(f"class-aware F1 {f1:.3f} (min {policy.min_class_f1})")
    if weak:
        problems.append(f"per-class F1 below {policy.min_per_class_f1}: {', '.join(weak)}")
    thin = _too_little_evidence(agreement, policy)
    reason = (
        thin
        or "; ".join(problems)
        or f"class-aware F1 {f1:.3f} (min {policy.min_class_f1}); every class with "
        f">= {policy.min_class_support} sure boxes >= {policy.min_per_class_f1}"
    )
    status = FAIL if thin or problems else PASS
    return check(status, reason, **agreement.classes.figures(), **_basis(agreement, policy)), rows
