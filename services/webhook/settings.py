from pydantic import Field

from services.core.settings import ServiceSettings, group


class WebhookSettings(ServiceSettings):
    """Delivery of alerts to an HTTP endpoint, from steadyeye.alerts.v1 in a consumer group of
    its own: a slow or dead endpoint never delays alerts or the alert service's commits."""

    model_config = group("WEBHOOK")

    # Often carries a token: the chart reads it from a Secret, and logs show scheme and host only.
    url: str = Field(pattern=r"^https?://[^/\s]+")
    timeout_s: float = Field(5.0, gt=0)
    # How long one alert is retried (with the loop's backoff, up to 2 s between tries) before
    # it is dead-lettered. Longer than a typical endpoint restart; order per camera is kept
    # meanwhile, so a camera's later alerts wait behind it.
    retry_for_s: float = Field(600.0, gt=0)
