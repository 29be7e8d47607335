"""stocksent.service_process: a service started for a benchmark or a test stops when the
process that started it is killed, instead of running on."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stocksent.service_process import REPO_ROOT, exits_with_parent

PARENT = """
import sys, time
from pathlib import Path
from stocksent.service_process import ServiceProcess
service = ServiceProcess(
    "produce",
    ["--synthetic", "--bootstrap-servers", "127.0.0.1:1", "--connect-timeout", "120"],
    Path(sys.argv[1]),
)
print(service.process.pid, flush=True)
time.sleep(120)
"""


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs util-linux setpriv")
def test_a_service_stops_when_its_parent_is_killed(tmp_path: Path) -> None:
    log = tmp_path / "producer.log"
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(log)], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True
    )
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    try:
        deadline = time.monotonic() + 60
        # it waits for Kafka (refused) until its connect timeout, 120 s
        while "waiting up to" not in _text(log):
            assert time.monotonic() < deadline, f"the service did not start:\n{_text(log)}"
            time.sleep(0.1)
        parent.kill()  # no clean-up code runs: only the kernel can tell the child
        parent.wait()
        deadline = time.monotonic() + 10
        while _running(child):
            assert time.monotonic() < deadline, (
                f"still running after its parent died:\n{_text(log)}"
            )
            time.sleep(0.1)
    finally:
        parent.kill()
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)


def test_without_setpriv_the_command_is_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert exits_with_parent(["python", "-V"]) == ["python", "-V"]
    monkeypatch.setattr(shutil, "which", lambda name: f"/usr/bin/{name}")
    assert exits_with_parent(["python", "-V"]) == [
        "/usr/bin/setpriv",
        "--pdeathsig",
        "TERM",
        "--",
        "python",
        "-V",
    ]


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _text(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""
