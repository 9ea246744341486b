"""The served model's input/output contract, read from its configuration in Triton.

`steadyeye model import` writes the contract into config.pbtxt `parameters`; preprocess and
inference read it back from the server they talk to, never from a constant copied by hand.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Literal

import tritonclient.grpc as triton
from tritonclient.utils import InferenceServerException

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelContract:
    name: str
    input_name: str
    input_width: int
    input_height: int
    pad_side: Literal["top_left", "center"]
    pad_value: int
    class_names: tuple[str, ...]
    max_batch_size: int

    @classmethod
    def from_config(cls, config: dict) -> ModelContract:
        params = {k: v.get("string_value", "") for k, v in config.get("parameters", {}).items()}
        missing = {"input_width", "input_height", "letterbox_pad_side", "class_names"} - set(params)
        if missing:
            raise ValueError(
                f"model {config.get('name')!r} has no {sorted(missing)} in its config parameters;"
                " import it with `steadyeye model import`"
            )
        side = params["letterbox_pad_side"]
        if side not in ("top_left", "center"):
            raise ValueError(f"letterbox_pad_side must be top_left or center, not {side!r}")
        return cls(
            name=config["name"],
            input_name=config["input"][0]["name"],
            input_width=int(params["input_width"]),
            input_height=int(params["input_height"]),
            pad_side=side,  # type: ignore[arg-type]
            pad_value=int(params.get("letterbox_pad_value", "114")),
            class_names=tuple(json.loads(params["class_names"])),
            max_batch_size=int(config.get("max_batch_size", 0)),
        )


def fetch(client: triton.InferenceServerClient, model: str, wait_s: float) -> ModelContract:
    """Wait (up to wait_s) for the model to be ready in Triton, then read its contract."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            if client.is_model_ready(model):
                return ModelContract.from_config(
                    client.get_model_config(model, as_json=True)["config"]
                )
            reason = "not ready"
        except InferenceServerException as exc:
            reason = str(exc)
        if time.monotonic() > deadline:
            raise TimeoutError(f"model {model!r} not ready in Triton after {wait_s:.0f}s: {reason}")
        log.info("waiting for model %s in Triton: %s", model, reason)
        time.sleep(1.0)
