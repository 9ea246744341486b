from services.core.runtime import Runtime, run_consumer
from services.inference.handler import InferenceHandler
from services.inference.settings import InferenceSettings
from services.inference.tiers import connect_tiers
from services.inference.versions import Versions


def build(runtime: Runtime[InferenceSettings]) -> InferenceHandler:
    tiers, model, rules = connect_tiers(runtime.settings)
    versions = Versions(runtime.redis(), tiers[0].client, model.name)
    return InferenceHandler(
        tiers,
        model,
        runtime.payloads(),
        runtime.topics.detections,
        runtime.settings,
        versions=versions,
        shadow_topic=runtime.topics.shadow,
        rules=rules,
        serving_topic=runtime.topics.serving,
        health=runtime.health,
    )


if __name__ == "__main__":
    run_consumer("inference", InferenceSettings, lambda topics: topics.ready, build)
