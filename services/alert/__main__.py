import sys

from services.alert.handler import AlertHandler, inputs
from services.alert.rules import AlertEngine, RuleFileError, load_rules
from services.alert.settings import AlertSettings
from services.core.runtime import Runtime, run_consumer


def build(runtime: Runtime[AlertSettings]) -> AlertHandler:
    settings = runtime.settings
    try:
        rules = load_rules(settings.rules_file)
    except (RuleFileError, OSError) as exc:
        print(f"steadyeye alert: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    return AlertHandler(
        AlertEngine(rules),
        runtime.redis(),
        runtime.payloads(),
        runtime.topics.alerts,
    )


if __name__ == "__main__":
    run_consumer("alert", AlertSettings, inputs, build)
