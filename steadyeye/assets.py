"""Where the model and the sample media come from: settings first, then ../shared beside the
checkout (development and CI), then the model's official release (machines with internet)."""

from __future__ import annotations

import hashlib
import logging
import urllib.request
from pathlib import Path

from pydantic import Field

from services.core.errors import ConfigError
from services.core.settings import Group, group

log = logging.getLogger(__name__)
_REPO = Path(__file__).resolve().parents[1]
SHARED_CANDIDATES = (Path.cwd().parent / "shared", _REPO.parent / "shared")
CACHE = Path.home() / ".cache" / "steadyeye"


class ModelSettings(Group):
    model_config = group("MODEL")

    path: Path | None = None  # a YOLO ONNX export; found in ../shared/models when unset
    family: str = "yolox"
    name: str = "yolox_nano"
    # Official YOLOX release asset, used only when no local file is found.
    url: str = (
        "https://github.com/Megvii-BaseDetection/YOLOX/releases/download/0.1.1rc0/yolox_nano.onnx"
    )
    # Checked when set; the release publishes no checksum, so the default checks the contract.
    sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")


class MediaSettings(Group):
    model_config = group("MEDIA")

    dir: Path | None = None  # sample footage; ../shared/media when unset


def _shared(sub: str, name: str) -> Path | None:
    for root in SHARED_CANDIDATES:
        if (root / sub / name).is_file():
            return root / sub / name
    return None


def model_file(settings: ModelSettings) -> Path:
    if settings.path is not None:
        if not settings.path.is_file():
            raise ConfigError(f"STEADYEYE_MODEL_PATH={settings.path} does not exist")
        return _checked(settings.path, settings.sha256)
    local = _shared("models", f"{settings.name}.onnx") or CACHE / f"{settings.name}.onnx"
    if local.is_file():
        return _checked(local, settings.sha256)
    log.info("downloading %s from %s", settings.name, settings.url)
    try:
        local.parent.mkdir(parents=True, exist_ok=True)
        urllib.request.urlretrieve(settings.url, local.with_suffix(".part"))
        local.with_suffix(".part").rename(local)
    except OSError as exc:
        raise ConfigError(
            f"no model found: set STEADYEYE_MODEL_PATH to a YOLO ONNX file, put it in "
            f"../shared/models/, or allow the download from {settings.url} ({exc})"
        ) from None
    return _checked(local, settings.sha256)


def _checked(path: Path, sha256: str | None) -> Path:
    if sha256 and hashlib.sha256(path.read_bytes()).hexdigest() != sha256:
        raise ConfigError(f"{path}: sha256 differs from STEADYEYE_MODEL_SHA256")
    return path


def media_file(settings: MediaSettings, name: str) -> Path:
    path = settings.dir / name if settings.dir else _shared("media", name)
    if path is None or not path.is_file():
        where = settings.dir or " or ".join(str(r / "media") for r in SHARED_CANDIDATES)
        raise ConfigError(f"sample media {name} not found in {where}; set STEADYEYE_MEDIA_DIR")
    return path
