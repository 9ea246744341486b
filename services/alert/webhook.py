"""Optional webhook sink: POST each new alert as JSON, retrying with backoff."""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request

from services.alert.rules import Firing

log = logging.getLogger(__name__)


class Webhook:
    def __init__(self, url: str, timeout_s: float, retries: int, backoff_s: float = 0.5) -> None:
        self._url = url
        self._timeout = timeout_s
        self._retries = retries
        self._backoff = backoff_s

    def send(self, firing: Firing) -> str | None:
        """None when delivered, else the reason it was not (after all retries)."""
        body = json.dumps(firing.to_dict()).encode()
        reason = ""
        for attempt in range(self._retries + 1):
            request = urllib.request.Request(
                self._url, data=body, method="POST", headers={"Content-Type": "application/json"}
            )
            try:
                with urllib.request.urlopen(request, timeout=self._timeout) as response:
                    if 200 <= response.status < 300:
                        return None
                    reason = f"HTTP {response.status}"
            except (urllib.error.URLError, TimeoutError, OSError) as exc:
                reason = str(getattr(exc, "reason", exc))
            if attempt < self._retries:
                time.sleep(self._backoff * 2**attempt)
        log.warning("webhook %s failed for alert %s: %s", self._url, firing.alert_id, reason)
        return f"webhook {self._url} failed after {self._retries + 1} attempts: {reason}"
