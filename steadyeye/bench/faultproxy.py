"""A TCP fault proxy on 127.0.0.1, for the degradation bench and the chaos tests.

It sits between a client and a server (Triton's gRPC port) and is switched, from any thread,
between four modes that stand for the ways a server fails (docs/design/degradation.md §1):

- ``pass``: bytes go through unchanged.
- ``delay``: a constant-latency delay line per direction ("up" is client to server, "down" server
  to client). Each chunk is stamped on arrival and released at arrival + D, in order, so a request
  is late by D whatever its size; sleeping D per chunk would multiply D by the chunk count.
- ``refuse``: the listener is closed, so a new connection gets ECONNREFUSED, and live connections
  are reset (RST, not FIN), as when the server's process dies. Any other mode listens again on
  the same port.
- ``blackhole``: connections are accepted and what they send is swallowed; nothing is answered,
  as with a hung server. Leaving it resets the live connections, because the bytes it swallowed
  broke their streams.

It fails only the clients pointed at it, so a fallback on the same server keeps working. It
stops by itself after ``max_s``, so a crashed bench or test never leaves it behind, and it runs
its own asyncio loop in a daemon thread, so synchronous code can drive it::

    with FaultProxy(triton_grpc_port, max_s=120) as proxy:
        client = InferenceServerClient(proxy.address)
        proxy.set("delay", 0.1, dirs=("up",))
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import math
import socket
import struct
import threading
from collections.abc import Iterable
from types import TracebackType

HOST = "127.0.0.1"
MODES = ("pass", "delay", "refuse", "blackhole")
DIRECTIONS = ("up", "down")

_LINE_CHUNKS = 1024  # chunks in one direction's delay line before reading waits (backpressure)
_CALL_TIMEOUT_S = 5.0  # for start-up, set() and close(); the loop answers in milliseconds
_LINGER_RST = struct.pack("ii", 1, 0)  # SO_LINGER on with 0 s: closing sends RST, not FIN

_Line = asyncio.Queue[tuple[float, bytes] | None]  # (release time, chunk); None: end of stream


class FaultProxy:
    """Forwards 127.0.0.1:``port`` to 127.0.0.1:``upstream_port`` and fails on demand.

    It starts listening (on a free port) in ``pass`` before the constructor returns, and stops
    ``max_s`` seconds later at the latest. ``chunk`` is the most it reads at once: the delay
    line's unit.
    """

    def __init__(self, upstream_port: int, max_s: float = 600.0, chunk: int = 65536) -> None:
        if not 0 < upstream_port < 65536:
            raise ValueError(f"upstream_port must be 1..65535, got {upstream_port}")
        if not (math.isfinite(max_s) and max_s > 0):
            raise ValueError(f"max_s must be a positive number of seconds, got {max_s}")
        if chunk < 1:
            raise ValueError(f"chunk must be at least 1 byte, got {chunk}")
        self._upstream = (HOST, upstream_port)
        self._max_s = max_s
        self._chunk = chunk
        self._mode = "pass"
        self._delay_s = 0.0
        self._dirs: frozenset[str] = frozenset(DIRECTIONS)
        self._port = 0
        self._address = ""
        self._server: asyncio.Server | None = None
        # One task per proxied connection, with its sockets, so that a mode change can reset them.
        self._links: dict[asyncio.Task[None], list[asyncio.StreamWriter]] = {}
        self._error: BaseException | None = None
        self._loop = asyncio.new_event_loop()
        self._stop = asyncio.Event()  # both bind to the loop on first use, in its thread
        self._set_lock = asyncio.Lock()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="faultproxy")
        self._thread.start()
        if not self._ready.wait(_CALL_TIMEOUT_S):
            self.close()
            raise RuntimeError(f"the fault proxy did not start in {_CALL_TIMEOUT_S} s")
        if self._error is not None:
            self._thread.join(_CALL_TIMEOUT_S)
            raise self._error

    # The public surface, called from any thread.

    @property
    def port(self) -> int:
        """The port it listens on; the same one across ``refuse`` and back."""
        return self._port

    @property
    def address(self) -> str:
        """``127.0.0.1:PORT``, the listening socket's own address, for a client's URL."""
        return self._address

    @property
    def mode(self) -> str:
        return self._mode

    @property
    def delay_s(self) -> float:
        """The delay that ``delay`` adds in each of ``dirs``."""
        return self._delay_s

    @property
    def dirs(self) -> frozenset[str]:
        return self._dirs

    @property
    def connections(self) -> int:
        """Live connections it has accepted (one still in the kernel's backlog is not counted)."""
        return len(self._links)

    @property
    def running(self) -> bool:
        """False once it has stopped: closed, or ``max_s`` after it started."""
        return self._thread.is_alive()

    def set(self, mode: str, delay_s: float = 0.0, dirs: Iterable[str] = DIRECTIONS) -> None:
        """Switch to ``mode``; ``delay_s`` and ``dirs`` are used by ``delay`` only.

        Returns once the mode holds: a refused port refuses and live connections have been reset.
        Chunks already in a delay line keep their release time. Thread-safe.
        """
        mode, delay_s, dirs_set = _checked(mode, delay_s, dirs)
        if threading.current_thread() is self._thread:
            raise RuntimeError("FaultProxy.set() would block its own loop")
        if not self.running:
            raise RuntimeError("the fault proxy has stopped")
        apply = self._apply(mode, delay_s, dirs_set)
        try:
            future = asyncio.run_coroutine_threadsafe(apply, self._loop)
        except RuntimeError:  # the loop closed just now
            apply.close()
            raise RuntimeError("the fault proxy has stopped") from None
        try:
            future.result(_CALL_TIMEOUT_S)
        except (concurrent.futures.CancelledError, TimeoutError):
            future.cancel()
            if not self.running:  # stopped meanwhile: max_s or close()
                raise RuntimeError("the fault proxy has stopped") from None
            raise

    def close(self) -> None:
        """Stop listening, reset every live connection and end the thread. Idempotent."""
        with contextlib.suppress(RuntimeError):  # the loop has already closed
            self._loop.call_soon_threadsafe(self._stop.set)
        if threading.current_thread() is not self._thread:
            self._thread.join(_CALL_TIMEOUT_S)

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = self._mode if self.running else "stopped"
        return f"FaultProxy({self._address} -> {HOST}:{self._upstream[1]}, {state})"

    # The loop's thread.

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._main())
        finally:
            self._loop.close()
            self._ready.set()  # in case _main failed before it could

    async def _main(self) -> None:
        try:
            await self._listen(0)
        except OSError as exc:
            self._error = exc
            return
        finally:
            self._ready.set()
        try:
            await asyncio.wait_for(self._stop.wait(), self._max_s)  # never outlives max_s
        except TimeoutError:
            pass
        finally:
            await self._close_all()

    async def _listen(self, port: int) -> None:
        self._server = await asyncio.start_server(self._accept, HOST, port, reuse_address=True)
        host, self._port = self._server.sockets[0].getsockname()[:2]
        self._address = f"{host}:{self._port}"

    async def _apply(self, mode: str, delay_s: float, dirs: frozenset[str]) -> None:
        async with self._set_lock:  # listening again awaits: keep concurrent set() calls apart
            if mode != "refuse" and self._server is None:
                await self._listen(self._port)  # the same port; raises before anything changes
            was = self._mode
            self._mode, self._delay_s, self._dirs = mode, delay_s, dirs
            if mode == "refuse":
                if self._server is not None:
                    self._server.close()
                    self._server = None
                self._reset_all()
            elif was == "blackhole" and mode != "blackhole":
                self._reset_all()
            await asyncio.sleep(0)  # let the aborted sockets close before set() returns

    def _reset_all(self) -> None:
        for task, writers in list(self._links.items()):
            for writer in writers:
                _reset(writer)
            task.cancel()
        self._links.clear()

    async def _close_all(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        self._reset_all()
        me = asyncio.current_task()
        for _ in range(5):  # a cancelled accept may have started one more task
            tasks = [t for t in asyncio.all_tasks() if t is not me]
            if not tasks:
                break
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.sleep(0)  # let the last sockets close before the loop does

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._serve(reader, writer)
        except asyncio.CancelledError:
            pass  # reset or closing: the end of this task, and asyncio would log it
        except OSError:
            pass  # a connection failed under us; that is this proxy's daily work

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        writers = [writer]
        self._links[task] = writers
        try:
            if self._mode == "refuse":  # accepted just before the listener closed
                _reset(writer)
            elif self._mode == "blackhole":  # a hung server: no upstream connection at all
                while await reader.read(self._chunk):
                    pass
            else:
                try:
                    up_reader, up_writer = await asyncio.open_connection(*self._upstream)
                except OSError:
                    _reset(writer)  # the server is down: the client sees what it would see
                    return
                writers.append(up_writer)
                await self._splice(reader, writer, up_reader, up_writer)
        finally:
            self._links.pop(task, None)
            for w in writers:
                w.close()

    async def _splice(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        up_reader: asyncio.StreamReader,
        up_writer: asyncio.StreamWriter,
    ) -> None:
        """Copy both directions until both have ended; if either end fails, reset both."""
        tasks: list[asyncio.Task[None]] = []
        for src, dst, direction in ((reader, up_writer, "up"), (up_reader, writer, "down")):
            line: _Line = asyncio.Queue(_LINE_CHUNKS)
            tasks.append(asyncio.create_task(self._feed(src, line, direction)))
            tasks.append(asyncio.create_task(self._deliver(line, dst)))
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            if any(not t.cancelled() and t.exception() is not None for t in done):
                _reset(writer)
                _reset(up_writer)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _feed(self, reader: asyncio.StreamReader, line: _Line, direction: str) -> None:
        """Read one direction into its delay line, each chunk stamped with its release time."""
        while data := await reader.read(self._chunk):
            if self._mode == "blackhole":
                continue
            delay = self._delay_s if self._mode == "delay" and direction in self._dirs else 0.0
            await line.put((self._loop.time() + delay, data))
        await line.put(None)

    async def _deliver(self, line: _Line, writer: asyncio.StreamWriter) -> None:
        """Write a delay line's chunks at their release times, then pass the half-close on."""
        while (item := await line.get()) is not None:
            due, data = item
            if (wait := due - self._loop.time()) > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()


def _checked(mode: str, delay_s: float, dirs: Iterable[str]) -> tuple[str, float, frozenset[str]]:
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}: use one of {', '.join(MODES)}")
    if not math.isfinite(delay_s) or delay_s < 0:
        raise ValueError(f"delay_s must be a finite number of seconds >= 0, got {delay_s}")
    dirs_set = frozenset([dirs] if isinstance(dirs, str) else dirs)
    if not dirs_set or not dirs_set <= set(DIRECTIONS):
        raise ValueError(f"dirs must be some of {', '.join(DIRECTIONS)}, got {sorted(dirs_set)}")
    return mode, float(delay_s), dirs_set


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST, as a dead process's socket does, so the peer sees ECONNRESET at once."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):  # already closed
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST)
    writer.transport.abort()
