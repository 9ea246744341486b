from services import contract, triton_client
from services.core.runtime import Runtime, run_consumer
from services.inference.handler import InferenceHandler
from services.inference.settings import InferenceSettings
from services.inference.versions import Versions


def build(runtime: Runtime[InferenceSettings]) -> InferenceHandler:
    settings = runtime.settings
    client = triton_client.connect(settings.triton_url)
    model = contract.fetch(client, settings.model_name, settings.model_wait_s)
    versions = Versions(runtime.redis(), client, model.name)
    return InferenceHandler(
        client,
        model,
        runtime.payloads(),
        runtime.topics.detections,
        settings,
        versions=versions,
        shadow_topic=runtime.topics.shadow,
    )


if __name__ == "__main__":
    run_consumer("inference", InferenceSettings, lambda topics: topics.ready, build)
