"""Broken file sources, each reported once: an error log line, a metric and a /readyz note.
Ingest stays ready: one broken camera must not take the others out of service."""

from __future__ import annotations

import logging
import threading

from prometheus_client import Gauge

from services.core.health import Health
from services.ingest.sources import BrokenSource

log = logging.getLogger(__name__)

source_failed = Gauge(
    "steadyeye_ingest_source_failed",
    "1 once the camera's file source proved broken, by reason: missing, no_images, unreadable "
    "(not a video or a corrupt header), no_frames, truncated (ended before its header's count)",
    ["camera", "reason"],
)


class SourceFailures:
    """Shared by the camera workers. A looping camera meets the same broken file on every
    pass: only the first time is reported, so logs and alerts are not flooded."""

    def __init__(self, health: Health | None = None) -> None:
        self._health = health
        self._reported: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def report(self, camera_id: str, error: BrokenSource, outcome: str) -> bool:
        """outcome: what the camera does next, for the log line. False if already reported."""
        with self._lock:
            if (camera_id, error.kind) in self._reported:
                return False
            self._reported.add((camera_id, error.kind))
        log.error(
            "camera %s: %s; %s",
            camera_id,
            error,
            outcome,
            extra={"fields": {"camera_id": camera_id, "reason": error.kind}},
        )
        source_failed.labels(camera_id, error.kind).set(1)
        if self._health is not None:
            self._health.note(f"camera {camera_id}", f"{error.kind}: {error}")
        return True
