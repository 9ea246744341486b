from services.core.runtime import Runtime, run_consumer
from services.webhook.handler import WebhookHandler
from services.webhook.settings import WebhookSettings


def build(runtime: Runtime[WebhookSettings]) -> WebhookHandler:
    settings = runtime.settings
    return WebhookHandler(settings.url, settings.timeout_s, settings.retry_for_s)


if __name__ == "__main__":
    run_consumer("webhook", WebhookSettings, lambda topics: topics.alerts, build)
