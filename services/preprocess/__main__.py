import os

import cv2

from services import contract, triton_client
from services.core.runtime import Runtime, run_consumer
from services.preprocess.handler import PreprocessHandler
from services.preprocess.settings import PreprocessSettings


def build(runtime: Runtime[PreprocessSettings]) -> PreprocessHandler:
    settings = runtime.settings
    # Read lazily by OpenCV at its first decode: bigger images are refused before allocation.
    os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(settings.max_image_pixels))
    # One frame at a time per replica: OpenCV's worker threads cost CPU (resize 0.28 -> 0.43 ms
    # with two) and buy nothing when the node runs several services; scale with replicas.
    cv2.setNumThreads(1)
    client = triton_client.connect(settings.triton_url)
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
