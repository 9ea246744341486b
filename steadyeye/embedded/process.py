"""Supervised child processes: logs to a file, restart with backoff, graceful stop."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

log = logging.getLogger(__name__)
# A process that ran this long before it exited counts as healthy: its next restart is quick
# again, instead of inheriting the backoff of crashes long ago.
HEALTHY_RUN_S = 30.0


class ManagedProcess:
    def __init__(
        self,
        name: str,
        argv: list[str],
        env: dict[str, str],
        log_dir: Path,
        restart: bool = True,
        grace_s: float = 15.0,
    ) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.log_path = log_dir / f"{name}.log"
        self.restart = restart
        self.grace_s = grace_s
        self.restarts = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._spawned_at = 0.0
        self._stopping = False
        self._lock = threading.Lock()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self) -> None:
        with self._lock:
            self._stopping = False
            self._spawn()
        if self.restart:
            threading.Thread(target=self._watch, name=f"watch-{self.name}", daemon=True).start()

    def _spawn(self) -> None:
        log_file = self.log_path.open("ab")
        # A session of its own: Ctrl-C in the terminal reaches only us, and we stop the
        # children in pipeline order.
        self._proc = subprocess.Popen(
            self.argv,
            env=self.env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self._spawned_at = time.monotonic()
        log_file.close()

    def _watch(self) -> None:
        delay = 1.0
        while True:
            proc = self._proc
            assert proc is not None
            code = proc.wait()
            with self._lock:
                if self._stopping or self._proc is not proc:
                    return
                if time.monotonic() - self._spawned_at >= HEALTHY_RUN_S:
                    delay = 1.0
                log.warning(
                    "%s exited with %s; restarting in %.0fs (log: %s)",
                    self.name,
                    code,
                    delay,
                    self.log_path,
                )
            time.sleep(delay)
            with self._lock:
                # stop() or stop() + start() during the backoff: not ours to respawn any more.
                if self._stopping or self._proc is not proc:
                    return
                self.restarts += 1
                self._spawn()
            delay = min(delay * 2, 30.0)

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def signal(self, signum: int) -> None:
        if self.running():
            assert self._proc is not None
            os.kill(self._proc.pid, signum)

    def stop(self) -> int | None:
        """SIGTERM, wait for the grace period, then SIGKILL. Returns the exit code."""
        with self._lock:
            self._stopping = True
            proc = self._proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(self.grace_s)
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop within %.0fs; killing it", self.name, self.grace_s)
                proc.kill()
                proc.wait()
        return proc.returncode

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""
