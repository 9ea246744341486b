"""Alerts -> an HTTP endpoint, once each, in order per camera.

Runs in a consumer group of its own on steadyeye.alerts.v1, so a slow or dead endpoint delays
nothing but its own deliveries. A failed POST is a TransientError: the loop rewinds the
partition to that alert and backs off, so a camera's later alerts wait behind it (order kept)
and nothing is committed undelivered. After `retry_for_s` of failures, or at once when the
endpoint refuses the alert itself (a 4xx other than 408/425/429), the alert is dead-lettered
with the reason. Redelivery after a crash can POST an alert twice: the `Idempotency-Key`
header carries its alert_id for the receiver to dedupe on.
"""

from __future__ import annotations

import logging
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from google.protobuf import json_format
from prometheus_client import Counter

from services.core import tracing
from services.core.errors import PoisonMessage, TransientError
from services.core.handler import Handler
from services.core.messages import Output
from steadyeye.v1.alerts_pb2 import Alert

log = logging.getLogger(__name__)
attempts = Counter(
    "steadyeye_webhook_attempts_total",
    "Webhook POSTs by outcome: delivered, retried, dead_lettered",
    ["outcome"],
)
# alert ids are SHA-1 hex (services/alert/rules/events.py); one goes into an HTTP header, so
# anything else (a CR/LF above all) is refused before it gets near a request.
ALERT_ID = re.compile(r"[0-9a-f]{40}")
# Client errors that say "not now" rather than "never".
RETRYABLE_4XX = {408, 425, 429}


@dataclass
class _Failing:
    since: float
    attempts: int = 0
    reason: str = ""


class WebhookHandler(Handler):
    input_type = Alert

    def __init__(
        self,
        url: str,
        timeout_s: float,
        retry_for_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = url
        self._timeout_s = timeout_s
        self._retry_for_s = retry_for_s
        self._clock = clock
        # Where the endpoint is, for logs and dead letters: its path and query often hold a token.
        parts = urlsplit(url)
        self._where = f"{parts.scheme}://{parts.hostname}" + (
            f":{parts.port}" if parts.port else ""
        )
        self._failing: dict[str, _Failing] = {}  # alert id -> its failed attempts so far

    def handle(self, message: Alert) -> list[Output]:
        alert_id = message.alert_id
        if not ALERT_ID.fullmatch(alert_id):
            raise PoisonMessage(f"alert_id {alert_id[:100]!r} is not 40 hex digits")
        status, reason = self._post(message)
        if 200 <= status < 300:
            self._failing.pop(alert_id, None)
            attempts.labels("delivered").inc()
            return []
        failing = self._failing.get(alert_id) or self._start_failing(alert_id)
        failing.attempts += 1
        failing.reason = reason
        permanent = 400 <= status < 500 and status not in RETRYABLE_4XX
        if permanent or self._clock() - failing.since >= self._retry_for_s:
            del self._failing[alert_id]
            attempts.labels("dead_lettered").inc()
            why = "refused it" if permanent else f"failed for {self._retry_for_s:.0f}s"
            raise PoisonMessage(
                f"webhook {self._where} {why} ({failing.attempts} attempts): {reason}"
            )
        attempts.labels("retried").inc()
        raise TransientError(f"webhook {self._where}: {reason}; will retry alert {alert_id}")

    def _post(self, alert: Alert) -> tuple[int, str]:
        """The HTTP status (0: no answer) and what to say about it."""
        body = json_format.MessageToJson(alert, preserving_proto_field_name=True).encode()
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": alert.alert_id,
            # The alert's trace continues at the receiver.
            **{k: v.decode("latin-1") for k, v in tracing.inject([])},
        }
        request = urllib.request.Request(self._url, data=body, method="POST", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self._timeout_s) as response:
                return response.status, f"HTTP {response.status}"
        except urllib.error.HTTPError as exc:
            excerpt = exc.read(200).decode("utf-8", "replace").strip()
            return exc.code, f"HTTP {exc.code}" + (f": {excerpt}" if excerpt else "")
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            return 0, str(getattr(exc, "reason", exc))

    def _start_failing(self, alert_id: str) -> _Failing:
        # Forget alerts that stopped failing here without being delivered here (their
        # partition moved to another replica): their clocks would never be read again.
        now = self._clock()
        for stale in [a for a, f in self._failing.items() if now - f.since > 2 * self._retry_for_s]:
            del self._failing[stale]
        failing = self._failing[alert_id] = _Failing(now)
        return failing
