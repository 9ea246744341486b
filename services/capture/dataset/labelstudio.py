"""Label Studio tasks with the model's boxes as `predictions` (pre-annotations), and the
labelling config they are written for (https://labelstud.io/guide/predictions). Rectangles
are in percent of the original image, as Label Studio stores them."""

from __future__ import annotations

from collections.abc import Sequence
from xml.sax.saxutils import quoteattr

from services.capture.dataset.record import ImageRecord, RecordBox

FROM_NAME = "label"  # the RectangleLabels control
TO_NAME = "image"  # the Image object; also the task's data key ($image)


def label_config(class_names: Sequence[str]) -> str:
    labels = "".join(f"    <Label value={quoteattr(name)}/>\n" for name in class_names)
    return (
        "<View>\n"
        f'  <Image name="{TO_NAME}" value="${TO_NAME}" zoom="true"/>\n'
        f'  <RectangleLabels name="{FROM_NAME}" toName="{TO_NAME}">\n'
        f"{labels}"
        "  </RectangleLabels>\n"
        "</View>\n"
    )


def task(record: ImageRecord, image_url: str) -> dict[str, object]:
    """The served boxes are one prediction; boxes below the serving threshold (the frames the
    `uncertain` strategy picked) a second one, under their own model_version, so an annotator
    can switch to them without their being mistaken for what the model served."""
    model = f"{record.model_name}:{record.model_version}"
    predictions = [_prediction(record, record.boxes, model, "s")]
    if record.candidates:
        predictions.append(_prediction(record, record.candidates, f"{model} below threshold", "c"))
    return {
        "data": {TO_NAME: image_url, **record.metadata(), "record": record.record},
        "meta": {"extra": record.extra},
        "predictions": predictions,
    }


def _prediction(
    record: ImageRecord, boxes: Sequence[RecordBox], model: str, prefix: str
) -> dict[str, object]:
    result = [r for n, box in enumerate(boxes) if (r := _rectangle(record, box, f"{prefix}{n}"))]
    return {
        "model_version": model,
        # Sorting tasks by it in the Data Manager brings the least sure first.
        "score": round(sum(box.score for box in boxes) / len(boxes), 4) if boxes else 0.0,
        "result": result,
    }


def _rectangle(record: ImageRecord, box: RecordBox, region: str) -> dict[str, object] | None:
    clipped = box.clipped(record.width, record.height)
    if clipped is None:
        return None
    x1, y1, x2, y2 = clipped
    w, h = record.width, record.height
    return {
        "id": region,  # unique within the prediction, as Label Studio asks
        "type": "rectanglelabels",
        "from_name": FROM_NAME,
        "to_name": TO_NAME,
        "original_width": w,
        "original_height": h,
        "image_rotation": 0,
        "score": round(box.score, 4),
        "value": {
            "x": round(x1 / w * 100, 6),
            "y": round(y1 / h * 100, 6),
            "width": round((x2 - x1) / w * 100, 6),
            "height": round((y2 - y1) / h * 100, 6),
            "rotation": 0,
            "rectanglelabels": [box.class_name],
        },
    }
