"""What the fault proxy does to a client, measured against a real echo server on 127.0.0.1.

Every socket has a timeout and every proxy a ``max_s``, so a broken proxy fails a test instead
of hanging it.
"""

from __future__ import annotations

import gc
import logging
import re
import socket
import socketserver
import statistics
import threading
import time
from collections.abc import Iterator

import pytest

from steadyeye.bench.faultproxy import FaultProxy

TIMEOUT_S = 3.0  # any socket operation that should succeed does so in milliseconds
MAX_S = 30.0  # the proxy's own safety net: no test leaves one running longer


class EchoServer(socketserver.ThreadingTCPServer):
    """Echoes every byte back; half-closes when the client does. Counts what it received."""

    daemon_threads = True
    block_on_close = False

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Echo)
        self.port: int = self.server_address[1]
        self.received: list[int] = []  # bytes per recv(); list.append is thread-safe


class _Echo(socketserver.BaseRequestHandler):
    server: EchoServer

    def handle(self) -> None:
        self.request.settimeout(MAX_S)
        try:
            while data := self.request.recv(65536):
                self.server.received.append(len(data))
                self.request.sendall(data)
        except OSError:
            pass  # the proxy reset the connection: that is what several tests do


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    server = EchoServer()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(TIMEOUT_S)


@pytest.fixture
def proxy(echo: EchoServer) -> Iterator[FaultProxy]:
    with FaultProxy(echo.port, max_s=MAX_S) as p:
        yield p


def connect(port: int, host: str = "127.0.0.1") -> socket.socket:
    return socket.create_connection((host, port), timeout=TIMEOUT_S)


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise AssertionError(f"connection closed after {len(data)} of {n} bytes")
        data += chunk
    return data


def round_trip_s(sock: socket.socket, message: bytes = b"ping") -> float:
    start = time.monotonic()
    sock.sendall(message)
    assert recv_exactly(sock, len(message)) == message
    return time.monotonic() - start


def wait_for_connections(proxy: FaultProxy, n: int) -> None:
    """Until the proxy has accepted n connections: connect() returns once the kernel has."""
    deadline = time.monotonic() + TIMEOUT_S
    while proxy.connections != n:
        assert time.monotonic() < deadline, f"{proxy.connections} connections, not {n}"
        time.sleep(0.005)


def median_round_trip_s(sock: socket.socket, n: int = 5) -> float:
    return statistics.median(round_trip_s(sock) for _ in range(n))


@pytest.mark.parametrize(
    ("mode", "delay_s"), [("pass", 0.0), ("delay", 0.05)], ids=["pass", "delay-both-ways"]
)
def test_bytes_go_through_both_ways_in_order_and_half_close_is_passed_on(
    proxy: FaultProxy, mode: str, delay_s: float
):
    proxy.set(mode, delay_s)
    payload = bytes(range(256)) * 2048  # 512 KiB: several reads, so chunk order matters
    with connect(proxy.port) as sock:

        def send_all_then_half_close() -> None:
            sock.sendall(payload)
            sock.shutdown(socket.SHUT_WR)  # the echo server ends when it sees this, then we do

        sender = threading.Thread(target=send_all_then_half_close, daemon=True)
        sender.start()
        received = bytearray()
        while chunk := sock.recv(65536):
            received += chunk
        sender.join(TIMEOUT_S)
    assert bytes(received) == payload


def test_delay_up_adds_its_delay_to_a_round_trip(proxy: FaultProxy):
    with connect(proxy.port) as sock:
        passed = median_round_trip_s(sock)
        proxy.set("delay", 0.1, dirs=("up",))
        delayed = median_round_trip_s(sock)
    assert proxy.mode == "delay"
    assert 0.09 <= delayed - passed < 0.5, (passed, delayed)


def test_refuse_refuses_new_connections_and_resets_open_ones(proxy: FaultProxy):
    with connect(proxy.port) as open_one:
        round_trip_s(open_one)
        proxy.set("refuse")
        with pytest.raises(ConnectionRefusedError):
            connect(proxy.port)
        with pytest.raises(ConnectionResetError):  # RST, as from a process that died
            open_one.recv(1)


def test_pass_after_refuse_listens_again_on_the_same_port(proxy: FaultProxy):
    port = proxy.port
    proxy.set("refuse")
    proxy.set("pass")
    assert proxy.port == port
    with connect(port) as sock:
        round_trip_s(sock)


def test_blackhole_accepts_and_swallows_without_answering(proxy: FaultProxy, echo: EchoServer):
    with connect(proxy.port) as before:
        round_trip_s(before)
        received = sum(echo.received)
        proxy.set("blackhole")
        with connect(proxy.port) as during:  # a hung server still accepts
            for sock in (before, during):
                sock.sendall(b"anyone there?")
                sock.settimeout(0.3)
                with pytest.raises(TimeoutError):
                    sock.recv(1)
    assert sum(echo.received) == received  # the server never saw the swallowed bytes


def test_leaving_blackhole_resets_its_connections_and_passes_new_ones(proxy: FaultProxy):
    proxy.set("blackhole")
    with connect(proxy.port) as swallowed:
        swallowed.sendall(b"lost")
        wait_for_connections(proxy, 1)  # else the proxy meets it first in pass, and passes it
        proxy.set("pass")
        with pytest.raises(ConnectionResetError):
            swallowed.recv(1)
    with connect(proxy.port) as sock:
        round_trip_s(sock)


def test_a_dead_upstream_resets_the_client():
    with socket.socket() as bound_only:  # holds a port that nothing listens on
        bound_only.bind(("127.0.0.1", 0))
        # The reset can beat connect() back to this thread: both are the same answer.
        with (
            FaultProxy(bound_only.getsockname()[1], max_s=MAX_S) as proxy,
            pytest.raises(ConnectionResetError),
            connect(proxy.port) as sock,
        ):
            sock.recv(1)


def test_it_stops_by_itself_after_max_s(echo: EchoServer):
    start = time.monotonic()
    proxy = FaultProxy(echo.port, max_s=1.0)
    with connect(proxy.port) as sock:
        round_trip_s(sock)
        while proxy.running and time.monotonic() - start < 1.0 + TIMEOUT_S:
            time.sleep(0.02)
        stopped_after = time.monotonic() - start
        assert not proxy.running
        assert 0.9 <= stopped_after < 1.0 + TIMEOUT_S
        with pytest.raises(ConnectionResetError):  # its live connections went with it
            sock.recv(1)
    with pytest.raises(ConnectionRefusedError):
        connect(proxy.port)
    with pytest.raises(RuntimeError, match="stopped"):
        proxy.set("pass")


def test_close_stops_it_and_the_with_block_closes_it(echo: EchoServer):
    with FaultProxy(echo.port, max_s=MAX_S) as proxy:
        assert proxy.running
    assert not proxy.running
    with pytest.raises(ConnectionRefusedError):
        connect(proxy.port)
    proxy.close()  # again: nothing happens


def test_closing_with_live_connections_logs_nothing(
    echo: EchoServer, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.WARNING, logger="asyncio")
    proxy = FaultProxy(echo.port, max_s=MAX_S)
    with connect(proxy.port) as idle, connect(proxy.port) as delayed:
        round_trip_s(idle)
        proxy.set("delay", 1.0)
        delayed.sendall(b"in the delay line")
        proxy.set("blackhole")
        with connect(proxy.port) as swallowed:
            swallowed.sendall(b"swallowed")
            wait_for_connections(proxy, 3)
            proxy.close()
    gc.collect()  # "Task was destroyed but it is pending" would be logged here
    assert not proxy.running
    assert [r.getMessage() for r in caplog.records if r.name == "asyncio"] == []


def test_it_listens_on_127_0_0_1_only(proxy: FaultProxy):
    assert proxy.address == f"127.0.0.1:{proxy.port}"  # from the listening socket itself
    with connect(proxy.port, "127.0.0.1") as sock:
        round_trip_s(sock)
    with pytest.raises(ConnectionRefusedError):  # another loopback address: nobody there
        connect(proxy.port, "127.0.0.2")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("slow",), "unknown mode 'slow': use one of pass, delay, refuse, blackhole"),
        (("delay", -0.1), "delay_s must be"),
        (("delay", float("nan")), "delay_s must be"),
        (("delay", 0.1, ("sideways",)), "dirs must be some of up, down"),
        (("delay", 0.1, ()), "dirs must be some of up, down"),
    ],
)
def test_bad_arguments_raise_value_error_and_change_nothing(
    proxy: FaultProxy, args: tuple, message: str
):
    with pytest.raises(ValueError, match=re.escape(message)):
        proxy.set(*args)
    assert proxy.mode == "pass"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"upstream_port": 0}, "upstream_port must be 1..65535"),
        ({"upstream_port": 8001, "max_s": 0}, "max_s must be a positive number"),
        ({"upstream_port": 8001, "chunk": 0}, "chunk must be at least 1 byte"),
    ],
)
def test_bad_constructor_arguments_raise_value_error(kwargs: dict, message: str):
    with pytest.raises(ValueError, match=re.escape(message)):
        FaultProxy(**kwargs)
