from __future__ import annotations

import ipaddress
from pathlib import Path

from pydantic import Field, SecretStr, model_validator

from services.core.settings import ServiceSettings, group


class ConsoleSettings(ServiceSettings):
    model_config = group("CONSOLE")

    # Loopback by default: anything wider must set a token (checked below).
    http_host: str = "127.0.0.1"
    http_port: int = Field(8090, ge=0, le=65535)
    token: SecretStr | None = None
    # Where a frame's or an alert's trace opens, e.g. Jaeger: http://jaeger:16686/trace/{trace_id}
    trace_url: str = ""
    # The alert service's rules file: its zones and lines are drawn on the tiles.
    rules_file: Path | None = None
    alerts_kept: int = Field(100, ge=1, le=10_000)
    # How often the pages ask for new tiles and figures.
    refresh_ms: int = Field(700, ge=100)

    @model_validator(mode="after")
    def _guarded(self) -> ConsoleSettings:
        if self.token is None and not is_loopback(self.http_host):
            raise ValueError(
                f"http_host {self.http_host!r} is reachable from other machines: set "
                "STEADYEYE_CONSOLE_TOKEN (or bind 127.0.0.1)"
            )
        if self.token is not None and len(self.token.get_secret_value()) < 16:
            raise ValueError("token: at least 16 characters")
        if self.trace_url and "{trace_id}" not in self.trace_url:
            raise ValueError(f"trace_url {self.trace_url!r} has no {{trace_id}} placeholder")
        return self


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything
