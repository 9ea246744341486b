import os

import tritonclient.grpc as triton

from services import contract
from services.core.runtime import Runtime, run_consumer
from services.preprocess.handler import PreprocessHandler
from services.preprocess.settings import PreprocessSettings


def build(runtime: Runtime[PreprocessSettings]) -> PreprocessHandler:
    settings = runtime.settings
    # Read lazily by OpenCV at its first decode: bigger images are refused before allocation.
    os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(settings.max_image_pixels))
    client = triton.InferenceServerClient(settings.triton_url)
    model = contract.fetch(client, settings.model_name, settings.model_wait_s)
    client.close()
    return PreprocessHandler(
        model,
        runtime.payloads(),
        runtime.topics.ready,
        settings.max_image_pixels,
        settings.frozen_threshold,
    )


if __name__ == "__main__":
    run_consumer("preprocess", PreprocessSettings, lambda topics: topics.frames, build)
