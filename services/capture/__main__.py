import sys
from typing import NoReturn

from services import contract, triton_client
from services.capture.dataset import Dataset
from services.capture.handler import CaptureHandler, inputs
from services.capture.loader import StrategyFileError, check_classes, load_strategies
from services.capture.settings import CaptureSettings
from services.core.runtime import Runtime, run_consumer


def _stop(why: object) -> NoReturn:
    print(f"steadyeye capture: {why}", file=sys.stderr)
    raise SystemExit(1)


def build(runtime: Runtime[CaptureSettings]) -> CaptureHandler:
    settings = runtime.settings
    try:  # before waiting for Triton: a bad file stops the service at once
        strategies = load_strategies(settings.strategies_file)
    except StrategyFileError as exc:
        _stop(exc)
    client = triton_client.connect(settings.triton_url)
    model = contract.fetch(client, settings.model_name, settings.model_wait_s)
    try:
        check_classes(strategies, model.class_names)
        dataset = Dataset(settings.dataset_url, model.class_names)
    except (StrategyFileError, ValueError, OSError, ImportError) as exc:  # ImportError: s3fs...
        _stop(exc)
    return CaptureHandler(
        strategies, runtime.redis(), runtime.payloads(), dataset, model.class_names, settings
    )


if __name__ == "__main__":
    run_consumer("capture", CaptureSettings, inputs, build)
