"""contract: the candidate takes the same input and returns the same outputs and classes."""

from __future__ import annotations

from services.contract import ModelContract
from services.rollout.policy import Contract
from steadyeye.validate.result import FAIL, PASS, Side, check


def _described(config: dict, contract: ModelContract) -> dict:
    outputs = {
        o["name"]: {"data_type": o.get("data_type"), "dims": o.get("dims")}
        for o in config.get("output", [])
    }
    first = config["input"][0]
    return {
        "input": f"{first['name']} {first.get('data_type')} {first.get('dims')}",
        "input_size": f"{contract.input_width}x{contract.input_height}",
        "letterbox": f"{contract.pad_side}, pad {contract.pad_value}",
        "class_names": list(contract.class_names),
        "outputs": outputs,
    }


def _class_problem(serving: list[str], candidate: list[str]) -> str:
    if len(serving) != len(candidate):
        return f"{len(candidate)} classes (serving: {len(serving)})"
    diff = [
        f"{k}: {a!r} (serving {b!r})"
        for k, (a, b) in enumerate(zip(candidate, serving, strict=True))
        if a != b
    ]
    if sorted(serving) == sorted(candidate):
        return "class order differs: " + ", ".join(diff)[:300]
    return "class names differ: " + ", ".join(diff[:10])


def contract_check(reference: Side, candidate: Side, policy: Contract) -> dict:
    r = _described(reference.config, reference.contract)
    c = _described(candidate.config, candidate.contract)
    problems, notes = [], []
    for key in ("input", "input_size", "letterbox"):
        if r[key] != c[key]:
            problems.append(f"{key}: {c[key]} (serving: {r[key]})")
    if r["class_names"] != c["class_names"]:
        problems.append(_class_problem(r["class_names"], c["class_names"]))
    for name in sorted(set(r["outputs"]) | set(c["outputs"])):
        a, b = c["outputs"].get(name), r["outputs"].get(name)
        if a is None or b is None or a["data_type"] != b["data_type"]:
            problems.append(f"output {name}: {a} (serving: {b})")
        elif a["dims"] != b["dims"]:
            if policy.allow_max_detections_change and a["dims"][1:] == b["dims"][1:]:
                notes.append(
                    f"output {name} {a['dims']} (serving {b['dims']}): max_detections differs"
                )
            else:
                problems.append(f"output {name} dims {a['dims']} (serving: {b['dims']})")
    if problems:
        return check(FAIL, "; ".join(problems), reference=r, candidate=c)
    reason = "the same contract" + (f" ({'; '.join(notes)})" if notes else "")
    return check(PASS, reason, reference=r, candidate=c)
