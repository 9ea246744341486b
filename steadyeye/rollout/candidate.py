"""A candidate file imported as a model's next version folder in the repository on disk."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from services.rollout.repository import read_config, version_folders
from steadyeye.modelimport import import_model


def import_version(source: Path, family: str, model_dir: Path) -> int:
    """`model import` the file with the model's own thresholds and target, and add it as the
    next version folder; returns its number. The contract (input size, classes) must match:
    it belongs to the model, not to a version."""
    config = read_config(model_dir)
    params = {k: v.string_value for k, v in config.parameters.items()}
    target = config.backend or ("tensorrt" if config.platform == "tensorrt_plan" else "python")
    with tempfile.TemporaryDirectory(dir=model_dir.parent, prefix=".candidate.") as tmp:
        built = import_model(
            source,
            family,
            Path(tmp),
            config.name,
            target=target,
            score_threshold=float(params.get("score_threshold", 0.1)),
            iou_threshold=float(params.get("iou_threshold", 0.45)),
            max_detections=int(params.get("max_detections", 100)),
            class_names=None if "class_names" not in params else _names(params["class_names"]),
            max_batch_size=config.max_batch_size,
        )
        theirs = {k: v.string_value for k, v in read_config(built).parameters.items()}
        for key in ("input_width", "input_height", "letterbox_pad_side", "class_names"):
            if theirs.get(key) != params.get(key):
                raise ValueError(
                    f"{source}: {key} {theirs.get(key)!r} differs from model {config.name}'s "
                    f"{params.get(key)!r}: a new contract is a new model, not a version"
                )
        version = max([0, *version_folders(model_dir)]) + 1
        shutil.copytree(built / "1", model_dir / str(version))
    return version


def _names(raw: str) -> list[str]:
    return list(json.loads(raw))
