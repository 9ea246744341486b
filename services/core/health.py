"""/healthz, /readyz and /metrics on a small HTTP port."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest


class Health:
    """Readiness is the AND of named conditions, plus a watchdog on the loop's progress.
    Notes are what an operator should know but that does not make the service unready (one
    camera of many is broken): they follow the status in /readyz, one line each."""

    def __init__(self, watchdog_s: float) -> None:
        self._conditions: dict[str, bool] = {"started": False}
        self._notes: dict[str, str] = {}
        self._watchdog_s = watchdog_s
        self._progress_at = time.monotonic()
        self._lock = threading.Lock()

    def set(self, name: str, ok: bool) -> None:
        with self._lock:
            self._conditions[name] = ok

    def note(self, name: str, text: str) -> None:
        with self._lock:
            self._notes[name] = text.replace("\n", " ")  # one line per note in /readyz

    def clear_note(self, name: str) -> None:
        with self._lock:
            self._notes.pop(name, None)

    def progressed(self) -> None:
        self._progress_at = time.monotonic()

    def ready(self) -> tuple[bool, str]:
        """Ready or not, and why: "ok" or the failing conditions, then a line per note."""
        with self._lock:
            failing = [name for name, ok in self._conditions.items() if not ok]
            notes = [f"{name}: {text}" for name, text in sorted(self._notes.items())]
        stalled = time.monotonic() - self._progress_at
        if stalled > self._watchdog_s:
            failing.append(f"no progress for {stalled:.0f}s while input waits")
        return not failing, "\n".join([", ".join(failing) or "ok", *notes])


def serve(health: Health, host: str, port: int) -> ThreadingHTTPServer:
    """Start the server on a daemon thread; port 0 picks a free one (see server_address)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?")[0]
            if path == "/healthz":
                self._reply(200, b"ok\n", "text/plain")
            elif path == "/readyz":
                ok, why = health.ready()
                self._reply(200 if ok else 503, why.encode() + b"\n", "text/plain")
            elif path == "/metrics":
                self._reply(200, generate_latest(), CONTENT_TYPE_LATEST)
            else:
                self._reply(404, b"not found\n", "text/plain")

        def _reply(self, code: int, body: bytes, content_type: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # probes every few seconds would drown the service's own log

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="health-http", daemon=True).start()
    return server
