"""YOLO export families: the pixel contract each expects and how its raw output decodes.

Every family decodes to the same three tensors, so NMS and the rest of the fused graph are
shared: boxes [N, A, 4] (x1, y1, x2, y2 in letterboxed-input pixels), the best class score per
box [N, A] and that class's id [N, A] (int64).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from steadyeye.modelimport.builder import GraphBuilder
from steadyeye.modelimport.errors import ModelImportError

STRIDES = (8, 16, 32)
STRIDES_P6 = (8, 16, 32, 64)


def cells(height: int, width: int, strides: Sequence[int]) -> int:
    # Stride-2 convs (and YOLOX's space-to-depth stem) round odd sizes up: ceil at each level.
    return sum(-(-height // s) * -(-width // s) for s in strides)


def yolox_grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-anchor (x, y) cell [1, A, 2] and stride [1, A, 1], row-major per level, levels in
    stride order: how YOLOX concatenates its head outputs."""
    grids, strides = [], []
    for stride in STRIDES:
        rows, cols = -(-height // stride), -(-width // stride)
        ys, xs = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
        grids.append(np.stack([xs, ys], axis=-1).reshape(-1, 2))
        strides.append(np.full((rows * cols, 1), stride))
    grid = np.concatenate(grids)[None].astype(np.float32)
    return grid, np.concatenate(strides)[None].astype(np.float32)


@dataclass(frozen=True)
class Family:
    name: str
    bgr: bool  # network wants OpenCV's BGR order as is (else RGB)
    scale_01: bool  # network wants pixels / 255 (else raw 0..255)
    pad_side: Literal["top_left", "center"]  # where the letterbox pastes the resized image
    channels_first: bool  # output [N, 4+C, A] (YOLOv8) instead of [N, A, 5+C]
    objectness: bool  # a 5th channel multiplied into the class scores
    grid_offsets: bool  # xy/log-wh relative to grid cells (YOLOX) instead of pixels
    anchors_per_cell: int
    strides_options: tuple[tuple[int, ...], ...]

    def channels(self, num_classes: int) -> int:
        return 4 + int(self.objectness) + num_classes

    def layout(self, num_classes: int) -> str:
        if self.channels_first:
            return f"[batch, 4+{num_classes}={self.channels(num_classes)}, anchors]"
        return f"[batch, anchors, 5+{num_classes}={self.channels(num_classes)}]"

    def anchor_counts(self, height: int, width: int) -> set[int]:
        return {self.anchors_per_cell * cells(height, width, s) for s in self.strides_options}

    def mismatch(
        self, shape: Sequence[int], num_classes: int, height: int, width: int
    ) -> str | None:
        """Why a raw output of this shape is not this family's layout; None if it is."""
        if len(shape) != 3:
            return f"rank {len(shape)}, expected 3"
        channels, anchors = (shape[1], shape[2]) if self.channels_first else (shape[2], shape[1])
        if channels != self.channels(num_classes):
            implied = channels - self.channels(0)
            hint = (
                f" (if the model has {implied} classes, pass as many class_names)"
                if 0 < implied < 10_000
                else ""
            )
            return (
                f"{channels} channels per box, expected {self.channels(num_classes)} "
                f"for {num_classes} classes{hint}"
            )
        expected = self.anchor_counts(height, width)
        if anchors not in expected:
            return (
                f"{anchors} boxes, expected {' or '.join(map(str, sorted(expected)))} "
                f"for a {width}x{height} input"
            )
        return None

    def decode(
        self, g: GraphBuilder, raw: str, height: int, width: int, num_classes: int
    ) -> tuple[str, str, str]:
        """Graph nodes from the raw output to (boxes [N,A,4], score [N,A], class [N,A])."""
        x = raw
        if self.channels_first:  # YOLOv8 [N, 4+C, A] -> [N, A, 4+C], the others' layout
            x = g.op("Transpose", raw, perm=[0, 2, 1], hint="to_anchors_last")
        xy = g.slice(x, 0, 2, axis=2, hint="xy")
        wh = g.slice(x, 2, 4, axis=2, hint="wh")
        if self.grid_offsets:
            grid, stride = yolox_grid(height, width)
            stride_name = g.f32(stride, "stride")
            xy = g.op("Mul", g.op("Add", xy, g.f32(grid, "grid")), stride_name, hint="xy_px")
            wh = g.op("Mul", g.op("Exp", wh), stride_name, hint="wh_px")
        half = g.op("Mul", wh, g.f32(0.5, "half"), hint="half_wh")
        boxes = g.op(
            "Concat",
            g.op("Sub", xy, half, hint="x1y1"),
            g.op("Add", xy, half, hint="x2y2"),
            axis=2,
            hint="boxes_xyxy",
        )
        first = 4 + int(self.objectness)
        cls_scores = g.slice(x, first, first + num_classes, axis=2, hint="class_scores")
        # One class per box: the best one (ArgMax keeps the first on ties, like numpy).
        best = g.op("ArgMax", cls_scores, axis=2, keepdims=1, hint="best_class")
        score = g.op("GatherElements", cls_scores, best, axis=2, hint="best_score")
        if self.objectness:  # obj * max(cls) == max(obj * cls): obj >= 0
            score = g.op("Mul", g.slice(x, 4, 5, axis=2, hint="objectness"), score, hint="score")
        flat = g.i64([0, -1], "flat_shape")
        return (
            boxes,
            g.op("Reshape", score, flat, hint="score_flat"),
            g.op("Reshape", best, flat, hint="class_flat"),
        )


FAMILIES: dict[str, Family] = {
    "yolox": Family(
        "yolox",
        bgr=True,
        scale_01=False,
        pad_side="top_left",
        channels_first=False,
        objectness=True,
        grid_offsets=True,
        anchors_per_cell=1,
        strides_options=(STRIDES,),
    ),
    "yolov5": Family(
        "yolov5",
        bgr=False,
        scale_01=True,
        pad_side="center",
        channels_first=False,
        objectness=True,
        grid_offsets=False,
        anchors_per_cell=3,
        strides_options=(STRIDES, STRIDES_P6),
    ),
    "yolov8": Family(
        "yolov8",
        bgr=False,
        scale_01=True,
        pad_side="center",
        channels_first=True,
        objectness=False,
        grid_offsets=False,
        anchors_per_cell=1,
        strides_options=(STRIDES, STRIDES_P6),
    ),
}
ALIASES = {"yolo11": "yolov8", "yolov11": "yolov8"}  # YOLO11 exports keep YOLOv8's head layout


def get_family(name: str) -> Family:
    key = ALIASES.get(name.lower(), name.lower())
    if key not in FAMILIES:
        known = sorted([*FAMILIES, *ALIASES])
        raise ModelImportError(f"unknown model family {name!r}; known: {', '.join(known)}")
    return FAMILIES[key]


def matching_families(shape: Sequence[int], num_classes: int, height: int, width: int) -> list[str]:
    return [
        f.name for f in FAMILIES.values() if f.mismatch(shape, num_classes, height, width) is None
    ]


def check_layout(
    family: Family, shape: Sequence[int], num_classes: int, height: int, width: int
) -> None:
    why = family.mismatch(shape, num_classes, height, width)
    if why is None:
        return
    others = matching_families(shape, num_classes, height, width)
    hint = f"; it looks like a {' or '.join(others)} export" if others else ""
    raise ModelImportError(
        f"the model's output {list(shape)} does not match family {family.name} "
        f"({family.layout(num_classes)}): {why}{hint}"
    )
