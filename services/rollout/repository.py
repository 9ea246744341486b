"""A model's versions in a Triton model repository on disk: which folders exist and which the
config loads (`version_policy: specific`)."""

from __future__ import annotations

from pathlib import Path

from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc


def read_config(model_dir: Path) -> mc.ModelConfig:
    return text_format.Parse((model_dir / "config.pbtxt").read_text(), mc.ModelConfig())


def loaded_versions(model_dir: Path) -> list[int] | None:
    """The versions the config names; None when it has no `specific` policy."""
    config = read_config(model_dir)
    if not config.version_policy.HasField("specific"):
        return None
    return sorted(config.version_policy.specific.versions)


def set_versions(model_dir: Path, versions: list[int]) -> None:
    """Load exactly these versions on the next (re)load. Without a `specific` list Triton
    loads the latest folder, so a candidate copied in would serve after a restart."""
    config = read_config(model_dir)
    config.version_policy.specific.versions[:] = sorted(set(versions))
    staging = model_dir / ".config.pbtxt.new"
    staging.write_text(text_format.MessageToString(config))
    staging.replace(model_dir / "config.pbtxt")  # atomic: Triton never reads half a file


def version_folders(model_dir: Path) -> list[int]:
    return sorted(int(p.name) for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit())
