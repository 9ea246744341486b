"""What `steadyeye model validate` was asked to do, and UsageError when it cannot be done."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from services.rollout.policy import Policy

TRITON_URL_ENV = "STEADYEYE_INFERENCE_TRITON_URL"


class UsageError(Exception):
    """Bad arguments or environment: nothing was validated (exit code 2)."""


@dataclass
class Request:
    candidate: Path
    family: str
    against: str  # NAME[:VERSION] or FILE.onnx
    policy: Policy = field(default_factory=Policy)
    frames: Path | None = None
    labels: Path | None = None
    max_frames: int | None = 200
    class_names: list[str] | None = None
    against_family: str | None = None
    repository: Path = Path("model_repository")  # where `model import` wrote NAME


@dataclass(frozen=True)
class Against:
    """The reference: an ONNX export to serve ourselves, or a model Triton may already serve."""

    file: Path | None
    name: str  # the model name in Triton
    version: str  # "" for Triton's default


def parse_against(against: str) -> Against:
    """FILE.onnx -> (path, stem, ""); NAME[:VERSION] -> (None, NAME, VERSION)."""
    if against.endswith(".onnx") or Path(against).is_file():
        path = Path(against)
        if not path.is_file():
            raise UsageError(f"--against {against}: no such file")
        return Against(path, re.sub(r"[^A-Za-z0-9_.-]", "_", path.stem) or "reference", "")
    name, _, version = against.partition(":")
    if not name or (version and not version.isdigit()):
        raise UsageError(f"--against {against!r}: expected NAME, NAME:VERSION or FILE.onnx")
    return Against(None, name, version)
