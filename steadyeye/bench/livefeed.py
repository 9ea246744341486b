"""Live cameras for benchmarks and tests: a video file served over HTTP from 127.0.0.1 at its
own bitrate, so a reader gets frames at about the rate a camera would send them (a plain file
server hands the whole file over at once). Each connection plays the file from the start; at
its end the stream ends, as a camera's does when it drops, and ingest reconnects."""

from __future__ import annotations

import http.server
import threading
import time
from pathlib import Path

import cv2

CHUNK = 8192


class LiveFeed:
    def __init__(self, video: Path) -> None:
        capture = cv2.VideoCapture(str(video))
        frames, fps = capture.get(cv2.CAP_PROP_FRAME_COUNT), capture.get(cv2.CAP_PROP_FPS)
        capture.release()
        if not frames or not fps:
            raise ValueError(f"{video}: no frame count or rate to pace it by")
        self.fps = fps
        size = video.stat().st_size
        rate = size / (frames / fps)  # bytes per second
        closing = threading.Event()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "video/x-msvideo")
                self.send_header("Content-Length", str(size))
                self.end_headers()
                started, sent = time.monotonic(), 0
                with video.open("rb") as source:
                    try:
                        while (chunk := source.read(CHUNK)) and not closing.is_set():
                            self.wfile.write(chunk)
                            sent += len(chunk)
                            closing.wait(max(0.0, started + sent / rate - time.monotonic()))
                    except (BrokenPipeError, ConnectionResetError):
                        pass  # the reader went away

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._closing = closing
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def url(self, name: str) -> str:
        """A camera's stream (any name: each connection plays the file from its start)."""
        return f"http://127.0.0.1:{self._server.server_address[1]}/{name}.avi"

    def close(self) -> None:
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> LiveFeed:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
