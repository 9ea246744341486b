import tritonclient.grpc as triton

from services import contract
from services.core.runtime import Runtime, run_consumer
from services.inference.handler import InferenceHandler
from services.inference.settings import InferenceSettings


def build(runtime: Runtime[InferenceSettings]) -> InferenceHandler:
    settings = runtime.settings
    client = triton.InferenceServerClient(settings.triton_url)
    model = contract.fetch(client, settings.model_name, settings.model_wait_s)
    return InferenceHandler(client, model, runtime.payloads(), runtime.topics.detections, settings)


if __name__ == "__main__":
    run_consumer("inference", InferenceSettings, lambda topics: topics.ready, build)
