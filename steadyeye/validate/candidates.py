"""Candidate exports built from a real YOLO export, to see the gate work (tests, docs/models.md):

- int8_static: ONNX Runtime's static QDQ quantisation (per-channel int8 weights, MinMax
  calibration on letterboxed frames): a good candidate;
- div255: the input divided by 255 inside the graph, the classic normalisation mismatch (the
  model was exported for [0, 1] input and is fed raw frames): detects nothing;
- permute_classes: two class channels swapped (YOLOX head [N, A, 5+C]): the same boxes under
  other names.

How each was found to work, and what the importer refuses: docs/design/model-rollout.md §3.
`python -m steadyeye.validate.candidates OUT_DIR [--source yolox_nano.onnx]` writes all three.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from steadyeye.modelimport import get_family, make_batch_dynamic


def div255(src: Path, dst: Path) -> Path:
    model = onnx.load(str(src))
    graph = model.graph
    x = graph.input[0].name
    for node in graph.node:
        node.input[:] = ["x_div255" if i == x else i for i in node.input]
    graph.initializer.append(numpy_helper.from_array(np.array(255.0, np.float32), "k255"))
    graph.node.insert(0, helper.make_node("Div", [x, "k255"], ["x_div255"], name="div255"))
    onnx.save(model, str(dst))
    return dst


def permute_classes(src: Path, dst: Path, a: int = 0, b: int = 2) -> Path:
    """Swap class channels a and b of a YOLOX-layout head ([N, A, 5+C]; class k is 5+k)."""
    model = onnx.load(str(src))
    graph = model.graph
    y = graph.output[0].name
    for node in graph.node:
        node.output[:] = ["raw_head" if o == y else o for o in node.output]
    perm = list(range(graph.output[0].type.tensor_type.shape.dim[2].dim_value))
    perm[5 + a], perm[5 + b] = perm[5 + b], perm[5 + a]
    graph.initializer.append(numpy_helper.from_array(np.array(perm, np.int64), "class_perm"))
    graph.node.append(
        helper.make_node("Gather", ["raw_head", "class_perm"], [y], axis=2, name="permute")
    )
    onnx.save(model, str(dst))
    return dst


def calibration_frames(
    video: Path,
    family: str,
    size: tuple[int, int],
    start: int = 300,
    stop: int = 610,
    step: int = 10,
) -> list[np.ndarray]:
    """Letterboxed uint8 BGR frames start..stop (every step-th) of a video: by default disjoint
    from the frames validation uses first."""
    import cv2

    from services.contract import ModelContract
    from services.preprocess.letterbox import letterbox

    fam = get_family(family)
    contract = ModelContract("calibration", "images", size[1], size[0], fam.pad_side, 114, (), 1)
    capture = cv2.VideoCapture(str(video))
    frames = []
    try:
        index = 0
        while index < stop:
            ok, image = capture.read()
            if not ok:
                break
            if index >= start and (index - start) % step == 0:
                frames.append(letterbox(image, contract).image)
            index += 1
    finally:
        capture.release()
    if not frames:
        raise ValueError(f"{video}: no frames in {start}..{stop}")
    return frames


def int8_static(src: Path, dst: Path, calibration: Iterable[np.ndarray], family: str) -> Path:
    """Static int8 (QDQ). The export is made batch-dynamic and converted to opset 13 first:
    per-channel quantisation of an opset-11 graph writes a model ORT cannot load."""
    import onnxruntime as ort
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    ort.set_default_logger_severity(3)  # calibration warns about every unused initializer

    fam = get_family(family)
    net = onnx.version_converter.convert_version(make_batch_dynamic(onnx.load(str(src))), 13)
    name = net.graph.input[0].name

    def tensor(frame: np.ndarray) -> np.ndarray:
        pixels = frame if fam.bgr else frame[..., ::-1]
        x = pixels.transpose(2, 0, 1)[None].astype(np.float32)
        return x / 255.0 if fam.scale_01 else x

    feeds = iter([{name: tensor(f)} for f in calibration])

    class Reader:
        def get_next(self) -> dict | None:
            return next(feeds, None)

    with tempfile.TemporaryDirectory() as tmp:
        fp32, pre = Path(tmp, "fp32.onnx"), Path(tmp, "pre.onnx")
        onnx.save(net, str(fp32))
        quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=True)
        quantize_static(
            str(pre),
            str(dst),
            Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
        )
    return dst


def build_all(source: Path, video: Path, out: Path, family: str = "yolox") -> dict[str, Path]:
    from steadyeye.modelimport.batch import resolve_input_size

    out.mkdir(parents=True, exist_ok=True)
    size = resolve_input_size(onnx.load(str(source)), None)
    stem = source.stem
    return {
        "int8": int8_static(
            source, out / f"{stem}-int8.onnx", calibration_frames(video, family, size), family
        ),
        "div255": div255(source, out / f"{stem}-div255.onnx"),
        "permuted": permute_classes(source, out / f"{stem}-permuted.onnx"),
    }


def main() -> None:
    from services.core.settings import load
    from steadyeye.assets import MediaSettings, ModelSettings, media_file, model_file

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--source", type=Path, help="default: the demo model (yolox_nano)")
    parser.add_argument("--video", type=Path, help="calibration frames (default: vtest.avi)")
    args = parser.parse_args()
    source = args.source or model_file(load(ModelSettings))
    video = args.video or media_file(load(MediaSettings), "vtest.avi")
    for kind, path in build_all(source, video, args.out).items():
        print(f"{kind}: {path}")


if __name__ == "__main__":
    main()
