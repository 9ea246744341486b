"""The report, written as the run goes (see steadyeye/report/__init__.py)."""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from jinja2 import Environment, FileSystemLoader

from services.alert.rules.models import CameraRules
from services.core.claimcheck import Data
from services.core.errors import TransientError
from services.core.payload_keys import frame_key
from steadyeye.annotate import annotate, boxes_of, overlay_of
from steadyeye.report import CLASSES, INDEX, LATENCY, VIDEO
from steadyeye.report.frames import Banners, FrameOrder
from steadyeye.report.plots import classes_plot, latency_plot
from steadyeye.report.video import Video, pixels
from steadyeye.tally import Tally
from steadyeye.v1.alerts_pb2 import Alert, AlertState, Severity
from steadyeye.v1.frames_pb2 import Frame
from steadyeye.v1.tracks_pb2 import Tracks

# Frames held back before they are drawn: an alert is read a little after its frame's tracks,
# and must be known when that frame is drawn for its banner to start there. 30 frames: 3 s at
# the clip's 10 fps, ~0.7 s at --pace fast, against alerts read tens of ms after their frame;
# ~40 MB of 768x576 BGR.
HOLD_FRAMES = 30
BANNER_S = 2.0
# Payloads under the claim-check threshold travel inside the frame record (a small stream, or
# JPEG ingest); the latest ones wait here for their tracks message.
INLINE_FRAMES = 256


@dataclass
class _Held:
    tracks: Tracks
    image: np.ndarray | None


class Report:
    """Fed the run's frames, tracks and alerts as the demo reads them; `finish` writes the
    rest. `fetch` reads the claim-check store by key (PayloadStore.find)."""

    def __init__(
        self,
        directory: Path,
        camera_id: str,
        rules: CameraRules | None,
        fps: float,
        fetch: Callable[[str], Data | None],
    ) -> None:
        self.directory = directory
        self.video = Video(directory / VIDEO, fps)
        self.missing = 0  # frames whose pixels were gone: drawn on grey, so the count holds
        self.busy_s = 0.0  # time spent on the report, for the closing line
        self._camera_id = camera_id
        self._overlay = overlay_of(rules)
        self._fetch = fetch
        self._order: FrameOrder[_Held] = FrameOrder(HOLD_FRAMES)
        self._banners = Banners(span=max(1, round(BANNER_S * fps)))
        self._inline: OrderedDict[int, bytes] = OrderedDict()

    def on_message(self, message: Frame | Tracks) -> None:
        if message.ref.camera_id != self._camera_id:
            return
        started = time.perf_counter()
        if isinstance(message, Frame):
            if message.image.WhichOneof("location") == "inline":
                self._inline[message.ref.frame_id] = message.image.inline
                while len(self._inline) > INLINE_FRAMES:
                    self._inline.popitem(last=False)
        elif self._order.wants(message.ref.frame_id):
            held = _Held(message, pixels(self._payload(message), message.ref))
            for frame_id, due in self._order.add(message.ref.frame_id, held):
                self._draw(frame_id, due)
        self.busy_s += time.perf_counter() - started

    def on_alert(self, alert: Alert) -> None:
        """A new alert (the tally has dropped redeliveries): a banner from its frame on."""
        if alert.ref.camera_id == self._camera_id:
            self._banners.add(
                alert.ref.frame_id, f"{alert.rule_id} ({_what(alert)}): {alert.message}"
            )

    def flush(self) -> None:
        """Draw the frames still held back (the run is over)."""
        started = time.perf_counter()
        for frame_id, held in self._order.flush():
            self._draw(frame_id, held)
        self.busy_s += time.perf_counter() - started

    def finish(self, tally: Tally, summary: dict) -> Path:
        """Close the video, draw the plots and write index.html; returns its path."""
        started = time.perf_counter()
        self.flush()
        self.close()
        latency_plot(
            self.directory / LATENCY, tally.captured_at, tally.latencies_ms, tally.percentiles()
        )
        classes_plot(self.directory / CLASSES, tally.by_class)
        alerts = sorted(tally.alerts.values(), key=lambda a: (a.ref.frame_id, a.rule_id))
        notes = [
            f"{self.missing} frames had no pixels left in the claim-check store and are grey."
            if self.missing
            else "",
            f"{self._order.late} frames arrived too late for their place and are left out."
            if self._order.late
            else "",
        ]
        environment = Environment(
            loader=FileSystemLoader(Path(__file__).parent), autoescape=True, trim_blocks=True
        )
        page = environment.get_template("index.html.j2").render(
            summary=summary,
            summary_json=json.dumps(summary, indent=2),
            video={
                "name": VIDEO,
                "frames": self.video.frames,
                "fps": round(self.video.fps, 2),
                "size": self.video.size,
            },
            plots={"latency": LATENCY, "classes": CLASSES},
            alerts=[
                {
                    "rule": a.rule_id,
                    "severity": _what(a),
                    "frame": a.ref.frame_id,
                    "state": "resolved" if _resolved(a) else "firing",
                    "tracks": ", ".join(map(str, a.track_ids)) or "-",
                    "message": a.message,
                }
                for a in alerts
            ],
            notes=[note for note in notes if note],
        )
        index = self.directory / INDEX
        index.write_text(page, encoding="utf-8")
        self.busy_s += time.perf_counter() - started
        return index

    def close(self) -> None:
        """End the video file (also when the run failed, so no ffmpeg is left behind)."""
        self.video.close()

    def _payload(self, tracks: Tracks) -> Data | None:
        ref = tracks.ref
        if (data := self._inline.pop(ref.frame_id, None)) is not None:
            return data
        try:
            return self._fetch(frame_key(ref.camera_id, ref.frame_id))
        except TransientError:
            return None  # the store is down: a grey frame, the run goes on

    def _draw(self, frame_id: int, held: _Held) -> None:
        image = held.image
        if image is None:
            self.missing += 1
            width, height = self.video.size or (held.tracks.ref.width, held.tracks.ref.height)
            image = np.full((height or 360, width or 640, 3), 64, np.uint8)
        banners = self._banners.for_frame(frame_id)
        self.video.write(annotate(image, boxes_of(held.tracks), self._overlay, banners))


def _resolved(alert: Alert) -> bool:
    return alert.state == AlertState.ALERT_STATE_RESOLVED


def _what(alert: Alert) -> str:
    return (
        "resolved"
        if _resolved(alert)
        else Severity.Name(alert.severity).removeprefix("SEVERITY_").lower()
    )
