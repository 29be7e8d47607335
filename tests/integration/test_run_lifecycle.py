"""`stocksent run` leaves nothing running, however it ends (issue 20): its output closed
early (`| head`), Ctrl-C through a pipe (`| tee`: the reader dies too), SIGHUP (the
terminal closed) and SIGKILL (no clean-up code runs at all). Within 10 s no child is left
and no port it listened on is still open. A cheap model stands in for the LSTM."""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

from common.preflight import port_owner
from stocksent.local_kafka import LocalKafka, free_port, free_port_pair
from stocksent.service_process import REPO_ROOT

pytestmark = pytest.mark.integration

CONSTANT_MODEL = "py:bench.constant_model:predictor"
GONE_WITHIN_S = 10.0


@dataclass
class Run:
    """A `stocksent run` started as a user would, in the live-view phase."""

    process: subprocess.Popen[bytes]
    children: dict[str, int]  # role -> pid, from the run's own record
    ports: list[int]
    output: bytes


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _port_open(port: int) -> bool:
    if port_owner(port) is not None:
        return True
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _read_until(process: subprocess.Popen[bytes], marker: bytes, timeout_s: float) -> bytes:
    assert process.stdout is not None
    seen = b""
    deadline = time.monotonic() + timeout_s
    while marker not in seen:
        assert time.monotonic() < deadline, f"no {marker!r} after {timeout_s}s:\n{seen.decode()}"
        assert process.poll() is None or select.select([process.stdout], [], [], 0)[0], (
            f"run exited with {process.returncode}:\n{seen.decode()}"
        )
        ready, _, _ = select.select([process.stdout], [], [], 0.5)
        if ready:
            chunk = os.read(process.stdout.fileno(), 65536)
            if not chunk and process.poll() is not None:
                raise AssertionError(f"run exited with {process.returncode}:\n{seen.decode()}")
            seen += chunk
    return seen


@contextlib.contextmanager
def started_run(tmp_path: Path, bootstrap: str | None) -> Iterator[Run]:
    """Starts `stocksent run` (its own Kafka unless `bootstrap`) and waits for rows."""
    metrics = free_port_pair()
    kafka_port = free_port_pair()
    aggregator_metrics = free_port()
    ports = [metrics, metrics + 1, aggregator_metrics]
    argv = [
        sys.executable,
        "-m",
        "stocksent.cli",
        "run",
        "--model",
        CONSTANT_MODEL,
        "--rate",
        "20",
        "--classifier-metrics-port",
        str(metrics),
        "--producer-metrics-port",
        str(metrics + 1),
        "--aggregator-metrics-port",
        str(aggregator_metrics),
        "--log-dir",
        str(tmp_path / "logs"),
    ]
    if bootstrap:
        argv += ["--bootstrap-servers", bootstrap]
    else:
        argv += ["--kafka-port", str(kafka_port)]
        ports += [kafka_port, kafka_port + 1]
    process = subprocess.Popen(
        argv,
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # our signals only, as a terminal would send them
    )
    children: dict[str, int] = {}
    try:
        output = _read_until(process, b"bullish", 180)  # a labeled row: all of it is running
        record = orjson.loads((tmp_path / "logs" / "active.json").read_bytes())
        children = {k: int(v) for k, v in record["children"].items()}
        assert {"classifier", "aggregator", "producer"} <= set(children)
        assert bootstrap or "kafka" in children
        yield Run(process, children, ports, output)
    finally:
        for pid in [process.pid, *children.values()]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.communicate(timeout=30)
        if not bootstrap:
            shutil.rmtree(LocalKafka(port=kafka_port).root, ignore_errors=True)


def assert_nothing_left(run: Run) -> None:
    deadline = time.monotonic() + GONE_WITHIN_S
    while time.monotonic() < deadline:
        alive = {name: pid for name, pid in run.children.items() if _running(pid)}
        listening = [p for p in run.ports if _port_open(p)]
        if not alive and not listening:
            return
        time.sleep(0.2)
    raise AssertionError(f"after {GONE_WITHIN_S}s still running: {alive}, listening: {listening}")


def test_output_closed_early_stops_everything(tmp_path: Path) -> None:
    # `stocksent run | head`: the reader leaves; run's next line finds the pipe closed
    with started_run(tmp_path, bootstrap=None) as run:
        assert run.process.stdout is not None
        run.process.stdout.close()
        assert_nothing_left(run)
        assert run.process.wait(timeout=GONE_WITHIN_S) == 0
        assert run.process.stderr is not None
        assert b"Traceback" not in run.process.stderr.read()


def test_ctrl_c_through_a_pipe_stops_everything(tmp_path: Path, kafka_bootstrap: str) -> None:
    # `make run | tee run.log` then Ctrl-C: run gets SIGINT and tee is gone as well
    with started_run(tmp_path, bootstrap=kafka_bootstrap) as run:
        assert run.process.stdout is not None
        run.process.stdout.close()
        run.process.send_signal(signal.SIGINT)
        assert_nothing_left(run)
        assert run.process.wait(timeout=GONE_WITHIN_S) == 0


def test_sighup_stops_everything(tmp_path: Path, kafka_bootstrap: str) -> None:
    # the terminal closed
    with started_run(tmp_path, bootstrap=kafka_bootstrap) as run:
        run.process.send_signal(signal.SIGHUP)
        assert_nothing_left(run)
        out, err = run.process.communicate(timeout=GONE_WITHIN_S)
        assert b"all stopped (exit 0)" in out, out + err
        assert b"Traceback" not in err


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs util-linux setpriv")
def test_sigkill_of_run_stops_its_children_and_its_kafka(tmp_path: Path) -> None:
    # no clean-up code of run's runs: only the kernel can tell its children
    with started_run(tmp_path, bootstrap=None) as run:
        run.process.kill()
        assert_nothing_left(run)


BROKER_PARENT = """
import sys, time
from pathlib import Path
from stocksent.local_kafka import LocalKafka
broker = LocalKafka(port=int(sys.argv[1]), home=Path(sys.argv[2]))
broker.up()  # as the benchmark and the test fixtures start theirs
print(broker.pid(), flush=True)
time.sleep(300)
"""


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs util-linux setpriv")
def test_a_broker_started_in_process_stops_when_its_process_is_killed(tmp_path: Path) -> None:
    # `make bench` stopped by a timeout left its temporary broker running under PID 1
    port = free_port_pair()
    parent = subprocess.Popen(
        [sys.executable, "-c", BROKER_PARENT, str(port), str(tmp_path / "kafka")],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert parent.stdout is not None
    broker = int(parent.stdout.readline())
    try:
        assert _running(broker) and _port_open(port)
        parent.kill()
        parent.wait()
        deadline = time.monotonic() + GONE_WITHIN_S
        while (_running(broker) or _port_open(port)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _running(broker), "the broker outlived the process that started it"
        assert not _port_open(port)
    finally:
        parent.kill()
        with contextlib.suppress(ProcessLookupError):
            os.kill(broker, signal.SIGKILL)
