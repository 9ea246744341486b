"""The two models' files, made with `model import`: the reference for the embedded Triton's
repository, the candidate wherever the Triton that serves it will read it from."""

from __future__ import annotations

import shutil
from pathlib import Path

from steadyeye.modelimport import ModelImportError, import_model
from steadyeye.validate.request import TRITON_URL_ENV, Against, Request, UsageError
from steadyeye.validate.server import ServingError, as_python_backend


def stage_reference(request: Request, against: Against, repository: Path) -> str | None:
    """Put the reference into `repository` as a Python-backend model, from --against FILE.onnx,
    else `model import`'s output in --repository, else the demo model; return a note on where
    it came from (None for the file given)."""
    if against.file is not None:
        family = request.against_family or request.family
        try:
            import_model(against.file, family, repository, against.name, instances=1)
        except ModelImportError as exc:
            raise UsageError(f"--against {against.file}: {exc}") from None
        return None
    local = request.repository / against.name
    if (local / "config.pbtxt").is_file():
        if against.version and not (local / against.version).is_dir():
            raise UsageError(f"{local} has no version {against.version}")
        target = repository / against.name
        shutil.copytree(local, target, ignore=shutil.ignore_patterns("*.plan"))
        try:
            as_python_backend(target, against.version or None)
        except ServingError as exc:
            raise UsageError(str(exc)) from None
        return f"reference {against.name} from {local}"
    from services.core.settings import load
    from steadyeye.assets import ModelSettings, model_file

    settings = load(ModelSettings)
    if against.name == settings.name and not against.version:
        source = model_file(settings)
        import_model(source, settings.family, repository, against.name, instances=1)
        return f"reference {against.name}: the demo model {source}"
    raise UsageError(
        f"--against {request.against}: no Triton serves it (set {TRITON_URL_ENV}), "
        f"it is not in {request.repository}/ and it is not the demo model; "
        "give the current model's ONNX file instead"
    )


def import_candidate(
    request: Request, name: str, reference_config: dict, target: str, into: Path
) -> Path:
    """`model import` the candidate under `name` for `target`, with the reference's own
    thresholds, so both models are compared after the same post-processing."""
    params = {
        k: v.get("string_value", "") for k, v in reference_config.get("parameters", {}).items()
    }
    options: dict = {}
    for key, cast in (
        ("score_threshold", float),
        ("iou_threshold", float),
        ("max_detections", int),
    ):
        if params.get(key):
            options[key] = cast(params[key])
    return import_model(
        request.candidate,
        request.family,
        into,
        name,
        target=target,
        class_names=request.class_names,
        instances=1,
        **options,
    )
