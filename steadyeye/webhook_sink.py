"""A real HTTP webhook receiver, in process, that can go down and come back on the same port.
Used by the tests and `steadyeye bench webhook` as the endpoint alerts are delivered to."""

from __future__ import annotations

import http.server
import json
import socket
import threading
import time
from dataclasses import dataclass, field


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Delivery:
    alert_id: str
    camera_id: str
    headers: dict[str, str]
    body: dict
    at: float  # time.time() when it arrived


@dataclass
class WebhookSink:
    """Records each POST before it answers, so a client that got its answer finds the delivery
    recorded. `statuses` are answers to give first (then 200s); only 200s are deliveries."""

    port: int = field(default_factory=_free_port)
    statuses: list[int] = field(default_factory=list)
    received: list[Delivery] = field(default_factory=list)
    _server: http.server.ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/s3cr3t-token"  # a token, as real ones have

    def up(self) -> WebhookSink:
        sink = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                status = sink.statuses.pop(0) if sink.statuses else 200
                if status == 200:
                    camera_id = body.get("ref", {}).get("camera_id", "")
                    sink.received.append(
                        Delivery(body["alert_id"], camera_id, dict(self.headers), body, time.time())
                    )
                answer = b"ok\n" if status == 200 else b"no\n"
                self.send_response(status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: object) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def down(self) -> None:
        """Stop listening: connections are refused, as from a crashed endpoint."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
