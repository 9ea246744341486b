"""The console, in a real headless browser (Debian's chromium through its chromedriver) on the
session's stack: live annotated tiles, the alerts list with snapshots and trace links. The
screenshots are kept under test-artifacts/console/ (docs/images/console.png is one of them)."""

from __future__ import annotations

import os
import re
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from services.console.feed import trace_id_of
from steadyeye.embedded.stack import Stack
from steadyeye.v1.tracks_pb2 import Tracks
from tests.conftest import ROOT, Pipeline, installed, wait_for

ARTIFACTS = Path(os.environ.get("STEADYEYE_TEST_ARTIFACTS", ROOT / "test-artifacts")) / "console"
CAMERA = "console-1"  # tests/data/rules.yaml: the yard zone and the gate line
TRACE_URL = "http://jaeger.example:16686/trace/{trace_id}"
FPS = 6.0
MAX_S = 300.0


@pytest.fixture(scope="module")
def console(stack: Stack) -> Iterator[str]:
    stack.start_service("console", env={"STEADYEYE_CONSOLE_TRACE_URL": TRACE_URL})
    stack.wait_ready("console")
    yield f"http://127.0.0.1:{stack.service_ports['console']}"
    stack.stop_service("console")


@pytest.fixture(scope="module")
def camera(stack: Stack, vtest_frames: list[np.ndarray]) -> Iterator[list[np.ndarray]]:
    """CAMERA's frames flowing at FPS (raw BGR through the claim-check store, as ingest sends
    them) while the module's tests run, for MAX_S at most; frame id k shows frames[k % len]."""
    sender = Pipeline(stack)
    stop = threading.Event()
    frames = vtest_frames

    def send() -> None:
        for frame_id in range(int(MAX_S * FPS)):
            if stop.wait(1 / FPS):
                return
            sender.send_frame(CAMERA, frame_id, frames[frame_id % len(frames)])

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    yield frames
    stop.set()
    thread.join(timeout=10)
    sender.producer.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = installed("chromium", "chromium")
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--window-size=1280,900"):  # fmt: skip
        options.add_argument(argument)
    driver = webdriver.Chrome(
        service=Service(installed("chromedriver", "chromium-driver")), options=options
    )
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def tile(browser, camera_id: str):
    """The camera's tile once it shows a frame; tiles appear on the page as cameras do."""
    from selenium.webdriver.common.by import By

    for element in browser.find_elements(By.CSS_SELECTOR, f'[data-camera="{camera_id}"] img.live'):
        loaded = browser.execute_script(
            "return arguments[0].complete && arguments[0].naturalWidth > 0", element
        )
        if loaded and element.get_attribute("data-frame"):
            return element
    return None


def screenshot(element, name: str) -> tuple[np.ndarray, int]:
    """The element as the browser painted it, and the frame id it showed."""
    frame_id = int(element.get_attribute("data-frame"))
    png = element.screenshot_as_png
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / name).write_bytes(png)
    return cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR), frame_id


def tracks_of(pipeline: Pipeline, frame_id: int) -> Tracks:
    [message] = [
        m
        for m in pipeline.read_messages(pipeline.topics.tracks, Tracks, CAMERA, frame_id + 1)
        if m.ref.frame_id == frame_id
    ][:1]
    return message


def test_camera_tiles_are_live_and_annotated(console, camera, browser, pipeline):
    browser.get(console + "/")
    assert wait_for(lambda: tile(browser, CAMERA) is not None, 90, every_s=0.5), "no live tile"
    first, first_id = screenshot(tile(browser, CAMERA), "tile-1.png")
    assert wait_for(lambda: int(tile(browser, CAMERA).get_attribute("data-frame")) > first_id, 30)
    second, second_id = screenshot(tile(browser, CAMERA), "tile-2.png")
    browser.save_screenshot(str(ARTIFACTS / "cameras.png"))

    assert second_id > first_id
    assert np.abs(first.astype(int) - second.astype(int)).mean() > 1, "the tile never changed"

    # Where the tracker put boxes, the painted tile differs from the camera's own pixels.
    raw = camera[second_id % len(camera)]
    painted = cv2.resize(second, (raw.shape[1], raw.shape[0]), interpolation=cv2.INTER_AREA)
    difference = np.abs(painted.astype(int) - raw.astype(int)).sum(axis=2)
    boxes = [t.detection.box for t in tracks_of(pipeline, second_id).tracks]
    assert boxes, "the sample clip always has people on it"
    edges = [difference[int(b.y1) : int(b.y2), int(b.x1)].mean() for b in boxes if b.x1 >= 2]
    assert np.median(edges) > 3 * np.median(difference), "no boxes drawn on the tile"


def test_camera_page_shows_its_health(console, camera, browser):
    from selenium.webdriver.common.by import By

    browser.get(f"{console}/cameras/{CAMERA}")

    def field(name: str) -> str:
        return browser.find_element(By.CSS_SELECTOR, f'[data-field="{name}"]').text

    assert wait_for(lambda: field("fps") not in ("", "-", "0.0"), 30, every_s=0.5)
    assert wait_for(lambda: field("model") == "yolox_nano", 30, every_s=0.5)
    assert float(field("latency_ms.p50")) > 0
    assert wait_for(lambda: tile(browser, CAMERA) is not None, 30, every_s=0.5)
    browser.save_screenshot(str(ARTIFACTS / "camera.png"))


ALERT_ROWS = """
return [...document.querySelectorAll("tr.alert")].map(row => {
  const image = row.querySelector("img"), trace = row.querySelector("a[href*='/trace/']");
  return {alert: row.dataset.alert, camera: row.querySelector("td:nth-child(3) a").textContent,
          loaded: !!image && image.complete && image.naturalWidth > 0,
          trace: trace ? trace.href : ""};
});
"""


def test_alerts_fill_in_with_snapshots_and_trace_links(console, camera, browser, pipeline):
    browser.get(console + "/alerts")

    def shown() -> list[dict]:
        # Read in one script: the list is replaced whenever an alert arrives.
        return [row for row in browser.execute_script(ALERT_ROWS) if row["camera"] == CAMERA]

    # The yard zone fires once someone has stood in it for 0.3 s; the list fills by itself, and
    # each alert's snapshot loads.
    assert wait_for(lambda: any(row["loaded"] for row in shown()), 90, every_s=0.5)
    browser.save_screenshot(str(ARTIFACTS / "alerts.png"))

    row = next(row for row in shown() if row["loaded"])
    [record, *_] = pipeline.read(
        pipeline.topics.alerts, lambda r: row["alert"].encode() in (r.value or b""), 1
    )  # the alert's record (a redelivery would be a second, with the same trace)
    assert row["trace"] == TRACE_URL.format(trace_id=trace_id_of(record.headers))
    assert re.fullmatch(r"http://jaeger\.example:16686/trace/[0-9a-f]{32}", row["trace"])


@pytest.fixture
def guarded(stack: Stack) -> Iterator[str]:
    """A second console that needs a token (as any bind beyond loopback must)."""
    stack.start_service(
        "console", instance="console-guarded", env={"STEADYEYE_CONSOLE_TOKEN": "t" * 24}
    )
    stack.wait_ready("console-guarded")
    yield f"http://127.0.0.1:{stack.service_ports['console-guarded']}"
    stack.stop_service("console-guarded")


def status(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str]]:
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *_args, **_kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(urllib.request.Request(url, headers=headers or {}), timeout=5) as reply:
            return reply.status, dict(reply.headers)
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers)


@pytest.mark.parametrize(
    ("path", "headers", "expected"),
    [
        ("/", {}, 401),
        ("/alerts", {"Authorization": "Bearer wrong-token-wrong-token"}, 401),
        ("/", {"Authorization": "Bearer " + "t" * 24}, 200),
        ("/api/state", {"Cookie": "steadyeye_console=" + "t" * 24}, 200),
        ("/readyz", {}, 200),  # probes and metrics stay open for the orchestrator
        ("/metrics", {}, 200),
    ],
)
def test_a_token_guards_every_page(guarded, path, headers, expected):
    assert status(guarded + path, headers)[0] == expected


def test_a_token_in_the_address_becomes_a_cookie_and_leaves_the_address(guarded):
    code, headers = status(f"{guarded}/alerts?token={'t' * 24}&x=1")
    assert code == 307
    assert headers["location"] == "/alerts?x=1"
    assert "steadyeye_console=" + "t" * 24 in headers["set-cookie"]
    assert "httponly" in headers["set-cookie"].lower()
