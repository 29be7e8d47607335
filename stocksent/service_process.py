"""One `stocksent` service (`classify`, `produce`) as a child process, watched through its
metrics port: start-up time to ready, health, peak memory, graceful or hard stop. The one
supervision of children: `stocksent run`, the benchmark and the integration tests all start
services through it, so they run them exactly as an operator does."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

from common.checkout import REPO_ROOT
from common.children import exits_with_parent
from stocksent.local_kafka import free_port

__all__ = [
    "REPO_ROOT",
    "ServiceExitedError",
    "ServiceProcess",
    "StopAskedError",
    "exits_with_parent",
]


class ServiceExitedError(RuntimeError):
    """The service exited while it was awaited; `returncode` says how."""

    def __init__(self, message: str, returncode: int) -> None:
        super().__init__(message)
        self.returncode = returncode


class StopAskedError(Exception):
    """A stop was asked for while a service was still starting."""


class ServiceProcess:
    """`python -m stocksent.cli COMMAND --metrics-port PORT ARGS...`, output to `log_path`.

    `metrics_port` None picks a free port (0 disables the endpoint); `from_checkout` runs it
    in this checkout with it on PYTHONPATH (tests, benchmark), else where the caller is (the
    user's relative paths keep their meaning); `own_session` keeps a terminal's Ctrl-C from
    reaching it, so its parent stops it in order. It gets SIGTERM when its parent dies."""

    def __init__(
        self,
        command: str,
        args: Sequence[str],
        log_path: Path,
        *,
        name: str | None = None,
        metrics_port: int | None = None,
        from_checkout: bool = True,
        own_session: bool = False,
    ) -> None:
        self.name = name or command
        self.metrics_port = free_port() if metrics_port is None else metrics_port
        self.log_path = log_path
        env = dict(os.environ)
        if from_checkout:
            env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
            env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        argv = [
            sys.executable,
            "-m",
            "stocksent.cli",
            command,
            "--metrics-port",
            str(self.metrics_port),
            *args,
        ]
        self.started = time.monotonic()
        self.startup_s: float | None = None  # spawn to the first ready answer
        with log_path.open("ab") as log:
            self.process = subprocess.Popen(
                exits_with_parent(argv),
                cwd=REPO_ROOT if from_checkout else None,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=own_session,
            )

    def get(self, path: str, timeout: float = 2.0) -> tuple[int, str]:
        """HTTP GET on the metrics port: (status, body)."""
        url = f"http://127.0.0.1:{self.metrics_port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as reply:
                return int(reply.status), reply.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode()

    def wait_ready(
        self,
        timeout: float = 90.0,
        path: str = "/readyz",
        stopping: Callable[[], bool] = lambda: False,
    ) -> float:
        """Waits until `path` answers 200; returns (and keeps) the start-up time in seconds.
        Raises ServiceExitedError when the child exits, RuntimeError when it is not ready in
        time (both with the log's tail), StopAskedError as soon as `stopping()`."""
        deadline = self.started + timeout
        while time.monotonic() < deadline:
            if stopping():
                raise StopAskedError
            if self.process.poll() is not None:
                raise ServiceExitedError(
                    f"{self.log_path.name}: exited with {self.process.returncode}:\n{self.log()}",
                    self.process.returncode,
                )
            try:
                if self.get(path, timeout=1.0)[0] == 200:
                    self.startup_s = time.monotonic() - self.started
                    return self.startup_s
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{self.log_path.name}: not ready after {timeout}s:\n{self.log()}")

    def peak_rss_mb(self) -> float:
        """Peak resident set size (VmHWM) of the child, in MiB."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("VmHWM not found")

    def terminate(self, timeout: float = 15.0, signum: int = signal.SIGTERM) -> int:
        """A graceful stop (SIGTERM, or SIGINT); SIGKILL if it lingers. The exit code."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signum)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        return int(self.process.returncode)

    def kill(self) -> None:
        """kill -9, as a crash."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def log(self, tail: int = 6000) -> str:
        """The child's combined output (its last `tail` characters)."""
        return self.log_path.read_text(errors="replace")[-tail:]
