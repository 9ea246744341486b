from pydantic import Field

from services.core.settings import ServiceSettings, group


class AlertSettings(ServiceSettings):
    model_config = group("ALERT")

    rules_file: str
    # Webhook sink (optional): each new alert is POSTed as JSON, with retries; alerts that
    # still fail go to the dead-letter topic with the reason.
    webhook_url: str | None = None
    webhook_timeout_s: float = Field(5.0, gt=0)
    webhook_retries: int = Field(3, ge=0)
