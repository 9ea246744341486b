"""The cameras file: several cameras in one YAML document, validated at start-up."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from services.core.errors import ConfigError
from services.core.messages import CAMERA_ID

Priority = Literal["high", "normal", "low"]


class Camera(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=200, pattern=f"^{CAMERA_ID.pattern}$")
    source: str  # video file, image file or folder, rtsp:// or http(s):// URL
    # realtime: at the source's own frame rate; fast: as fast as the pipeline accepts.
    pace: Literal["realtime", "fast"] = "realtime"
    fps: float | None = Field(None, gt=0)  # overrides the rate the source reports
    max_frames: int | None = Field(None, ge=1)
    loop: bool = False  # restart a file source at its end (demos, soak tests)
    # Who gives way first when the pipeline falls behind: a camera sheds (live) or pauses
    # (file) once the backlog passes its priority's share of the limit (IngestSettings).
    priority: Priority = "normal"

    @field_validator("source")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("source must not be empty")
        return value

    @property
    def is_stream(self) -> bool:
        return self.source.split("://", 1)[0].lower() in {"rtsp", "rtsps", "http", "https", "rtmp"}


class CamerasFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cameras: list[Camera] = Field(min_length=1)


def load_cameras(path: str | Path) -> list[Camera]:
    try:
        document = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        cameras = CamerasFile.model_validate(document).cameras
    except ValidationError as exc:  # before ValueError, which it subclasses
        lines = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
        raise ConfigError(f"cameras file {path}:\n  " + "\n  ".join(lines)) from None
    # RecursionError: absurd nesting; ValueError: e.g. an integer of thousands of digits.
    except (OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError, ValueError) as exc:
        raise ConfigError(f"cameras file {path}: {exc}") from None
    ids = [camera.id for camera in cameras]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ConfigError(f"cameras file {path}: duplicate camera ids {duplicates}")
    return cameras
