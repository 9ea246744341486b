"""The HTML report of a validation: one self-contained file (images inline as base64 JPEG)
with the checks, the per-class table and the frames where the two models disagree most, side
by side: agreeing boxes green, a sure box the other model does not have red."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from services.rollout.agreement import FrameDetections, match

if TYPE_CHECKING:
    from steadyeye.validate.run import Validation

GREEN, RED = (60, 180, 75), (40, 40, 230)  # BGR


def _flags(
    mine: FrameDetections,
    other: FrameDetections,
    iou: float,
    present: float,
    sure: float,
    mine_is_candidate: bool,
) -> np.ndarray:
    """Per box of `mine`: True where it is sure and has no match (class-aware) in `other`."""
    keep_m = mine.scores >= present
    m, o = mine.subset(keep_m), other.subset(other.scores >= present)
    if mine_is_candidate:
        matched, _ = match(m, o, iou, True)
        unmatched = matched < 0
    else:
        _, taken = match(o, m, iou, True)
        unmatched = ~taken
    flags = np.zeros(len(mine.scores), bool)
    flags[np.flatnonzero(keep_m)] = unmatched & (m.scores >= sure)
    return flags


def _draw(
    image: np.ndarray,
    det: FrameDetections,
    flags: np.ndarray,
    names: tuple[str, ...],
    serve: float,
    title: str,
) -> np.ndarray:
    keep = (det.scores >= serve) | flags
    shown, bad = det.subset(keep), flags[keep]
    boxes, scores, classes = shown.boxes, shown.scores, shown.classes
    labels = [
        f"{names[c] if 0 <= c < len(names) else c} {s:.2f}"
        for c, s in zip(classes.tolist(), scores.tolist(), strict=True)
    ]
    canvas = image.copy()
    try:
        import supervision as sv

        detections = sv.Detections(
            xyxy=boxes.astype(np.float32).reshape(-1, 4),
            confidence=scores,
            class_id=bad.astype(int),
        )
        palette = sv.ColorPalette([sv.Color(*GREEN[::-1]), sv.Color(*RED[::-1])])
        lookup = sv.ColorLookup.CLASS
        canvas = sv.BoxAnnotator(color=palette, thickness=2, color_lookup=lookup).annotate(
            canvas, detections
        )
        canvas = sv.LabelAnnotator(
            color=palette, text_scale=0.4, text_padding=2, color_lookup=lookup
        ).annotate(canvas, detections, labels)
    except ImportError:  # supervision is in the bench extra: OpenCV does the same plainer
        for (x1, y1, x2, y2), label, wrong in zip(
            boxes.astype(int).tolist(), labels, bad.tolist(), strict=True
        ):
            color = RED if wrong else GREEN
            cv2.rectangle(canvas, (x1, y1), (x2, y2), color, 2)
            cv2.putText(
                canvas,
                label,
                (x1, max(y1 - 3, 10)),
                cv2.FONT_HERSHEY_SIMPLEX,
                0.4,
                color,
                1,
                cv2.LINE_AA,
            )
    band = np.full((28, canvas.shape[1], 3), 32, np.uint8)
    cv2.putText(
        band, title, (8, 19), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 1, cv2.LINE_AA
    )
    return np.vstack([band, canvas])


def side_by_side(validation: Validation, index: int, image: np.ndarray) -> np.ndarray:
    ref, cand = validation.reference, validation.candidate
    policy = validation.policy.agreement
    r, c = ref.detections[index], cand.detections[index]
    args = (policy.iou, policy.present, policy.sure)
    left = _draw(
        image,
        r,
        _flags(r, c, *args, mine_is_candidate=False),
        ref.contract.class_names,
        policy.serve_score,
        f"serving: {ref.name}",
    )
    right = _draw(
        image,
        c,
        _flags(c, r, *args, mine_is_candidate=True),
        cand.contract.class_names,
        policy.serve_score,
        "candidate",
    )
    gap = np.full((left.shape[0], 8, 3), 255, np.uint8)
    return np.hstack([left, gap, right])


def _jpeg(image: np.ndarray, width: int = 1400) -> str:
    if image.shape[1] > width:
        scale = width / image.shape[1]
        image = cv2.resize(
            image, (width, int(image.shape[0] * scale)), interpolation=cv2.INTER_AREA
        )
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 82])
    assert ok
    return base64.b64encode(data.tobytes()).decode()


def _fmt(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return html.escape(str(value))


STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1450px;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:3px 8px;
text-align:left;vertical-align:top}th{background:#f3f3f3}.pass{color:#1a7f37;font-weight:600}
.fail{color:#c0162b;font-weight:600}.skipped{color:#777}img{max-width:100%;margin:.3em 0 1.2em}
pre{background:#f7f7f7;padding:.6em;overflow:auto;font-size:12px}td.n{text-align:right}
"""


def render(result: dict, validation: Validation) -> str:
    status = "pass" if result["passed"] else "fail"
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>model validate: {html.escape(Path(result['candidate']['file']).name)}</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>Candidate <code>{html.escape(result['candidate']['file'])}</code>: "
        f"<span class='{status}'>{status.upper()}</span></h1>",
        f"<p>Against <code>{html.escape(result['reference']['against'])}</code> "
        f"(served version {_fmt(result['reference']['version'])}) in the "
        f"{_fmt(result['triton']['kind'])} Triton at {_fmt(result['triton']['url'])}, on "
        f"{result['frames']['count']} frames of {html.escape(result['frames']['source'])}.</p>",
        "<h2>Checks</h2><table><tr><th>check</th><th>result</th><th>why</th></tr>",
    ]
    for name, check in result["checks"].items():
        parts.append(
            f"<tr><td>{name}</td><td class='{check['status']}'>{check['status']}</td>"
            f"<td>{html.escape(check['reason'])}</td></tr>"
        )
    parts.append("</table>")
    if result["per_class"]:
        policy = result["policy"]["agreement"]
        parts.append(
            "<h2>Per class</h2><p>Support: boxes the serving model is sure of (score &ge; "
            f"{policy['serve_score'] + policy['margin']:g}); classes with support &ge; "
            f"{policy['min_class_support']} are gated at F1 &ge; {policy['min_per_class_f1']}. "
            f"Served: detections &ge; {policy['serve_score']:g} over all frames.</p><table><tr>"
            "<th>class</th><th>candidate's name</th><th>support</th><th>precision</th>"
            "<th>recall</th><th>F1</th><th>served (serving)</th><th>served (candidate)</th>"
            "<th>gate</th></tr>"
        )
        for row in result["per_class"]:
            parts.append(
                f"<tr><td>{_fmt(row['class'])}</td><td>{_fmt(row['candidate_class'])}</td>"
                f"<td class=n>{row['support']}</td><td class=n>{_fmt(row['precision'])}</td>"
                f"<td class=n>{_fmt(row['recall'])}</td><td class=n>{_fmt(row['f1'])}</td>"
                f"<td class=n>{row['served_reference']}</td>"
                f"<td class=n>{row['served_candidate']}</td>"
                f"<td class='{row['status']}'>{row['status']}</td></tr>"
            )
        parts.append("</table>")
    worst = result["worst_frames"]
    if worst and validation.candidate is not None:
        images = validation.source.read({w["index"] for w in worst})
        parts.append(
            "<h2>Where they disagree most</h2><p>Serving model left, candidate right; boxes "
            "served green, red where a model is sure of a box the other does not have (same "
            "class, IoU &ge; the policy's).</p>"
        )
        for entry in worst:
            image = images.get(entry["index"])
            if image is None:
                continue
            picture = _jpeg(side_by_side(validation, entry["index"], image))
            parts.append(
                f"<h3>frame {entry['index']}: {entry['disagreements']} disagreements</h3>"
                f"<img alt='frame {entry['index']}' "
                f"src='data:image/jpeg;base64,{picture}'>"
            )
    figures = {name: check["figures"] for name, check in result["checks"].items()}
    parts += [
        "<h2>Figures</h2><pre>",
        html.escape(json.dumps(figures, indent=2)),
        "</pre>",
        "<h2>Policy</h2><pre>",
        html.escape(json.dumps(result["policy"], indent=2)),
        "</pre>",
    ]
    if result["notes"]:
        parts.append(
            "<h2>Notes</h2><ul>"
            + "".join(f"<li>{html.escape(n)}</li>" for n in result["notes"])
            + "</ul>"
        )
    parts.append(f"<p><small>timings: {html.escape(json.dumps(result['timings']))}</small></p>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(path: Path, result: dict, validation: Validation) -> Path:
    path.write_text(render(result, validation))
    return path
