"""memory: what the candidate costs on this host, per model where the Python-backend stubs
show it, else as the growth of Triton's process tree."""

from __future__ import annotations

from services.rollout.policy import Memory
from steadyeye.validate.result import FAIL, PASS, SKIPPED, check


def memory_check(
    before: dict, after: dict, reference_name: str, candidate_name: str, policy: Memory
) -> dict:
    """`before`: server.memory() before loading the candidate; `after`: after the frames."""
    if not after:
        return check(SKIPPED, "not measured: Triton runs on another host (or psutil is missing)")
    per_model = after.get("models", {})
    ref, cand = per_model.get(reference_name), per_model.get(candidate_name)
    tree_delta = round(after["tree_rss_mb"] - before.get("tree_rss_mb", 0.0), 1)
    if ref and cand:
        method = (
            "USS (private memory) of the Python-backend stub process serving each "
            "model, per instance, after the frames"
        )
        ref_mb = ref["uss_mb"] / ref["processes"]
        cand_mb = cand["uss_mb"] / cand["processes"]
        details = {
            side: {k: round(v, 1) if isinstance(v, float) else v for k, v in entry.items()}
            for side, entry in (("reference", ref), ("candidate", cand))
        }
    else:
        method = "Triton's process-tree RSS growth from loading the candidate to the end"
        ref_mb, cand_mb, details = None, tree_delta, {}
    ratio = cand_mb / ref_mb if ref_mb else None
    problems = []
    if policy.max_ratio is not None and ratio is not None and ratio > policy.max_ratio:
        problems.append(f"{ratio:.2f}x the serving model's memory (max {policy.max_ratio}x)")
    if policy.max_mb is not None and cand_mb > policy.max_mb:
        problems.append(f"{cand_mb:.0f} MB (max {policy.max_mb} MB)")
    reason = "; ".join(problems) or (
        f"{cand_mb:.1f} MB vs {ref_mb:.1f} MB serving" if ref_mb else f"{cand_mb:.1f} MB"
    )
    return check(
        FAIL if problems else PASS,
        reason,
        measured=method,
        reference_mb=None if ref_mb is None else round(ref_mb, 1),
        candidate_mb=round(cand_mb, 1),
        ratio=None if ratio is None else round(ratio, 3),
        triton_tree_rss_growth_mb=tree_delta,
        per_model=details,
    )
