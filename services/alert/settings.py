from services.core.settings import ServiceSettings, group


class AlertSettings(ServiceSettings):
    model_config = group("ALERT")

    rules_file: str
