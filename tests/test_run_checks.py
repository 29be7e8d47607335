"""`stocksent run` before it starts anything: a previous run still running is named in one
line with how to stop it (or stopped with --stop-previous); each run's child logs are its own."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from common.failures import ExitCode
from stocksent.live_view import Status
from stocksent.local_kafka import free_port, free_port_pair
from stocksent.run import KEEP_RUN_LOGS, RUN_RECORD, run_log_dir
from stocksent.service_process import REPO_ROOT


def _stocksent(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stocksent.cli", *args],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _leftover(log_dir: Path) -> subprocess.Popen[bytes]:
    """A process that looks like a classifier an earlier run left behind, and its record."""
    process = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)", "stocksent", "classify"]
    )
    log_dir.mkdir(parents=True, exist_ok=True)
    record = {"run_pid": 999_999_999, "children": {"classifier": process.pid}}
    (log_dir / RUN_RECORD).write_bytes(orjson.dumps(record))
    return process


def test_a_previous_run_still_running_is_named_in_one_line(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    leftover = _leftover(logs)
    metrics = free_port_pair()
    ports = ["--classifier-metrics-port", str(metrics), "--producer-metrics-port", str(metrics + 1)]
    try:
        started = time.monotonic()
        refused = _stocksent("run", "--log-dir", str(logs), *ports)
        assert time.monotonic() - started < 10
        assert refused.returncode == ExitCode.IN_USE, refused.stderr
        assert "Traceback" not in refused.stderr
        (line,) = refused.stderr.strip().splitlines()
        assert f"classifier {leftover.pid}" in line
        assert "stocksent run --stop-previous" in line and f"kill {leftover.pid}" in line
        assert "of an earlier run are still running" in line  # its run process is gone
        assert leftover.poll() is None, "refusing must not stop anything"
        # --stop-previous stops it, then goes on (here to a Kafka that is not there)
        stopped = _stocksent(
            "run", "--log-dir", str(logs), *ports, "--stop-previous",
            "--bootstrap-servers", "nowhere:1",
        )  # fmt: skip
        assert leftover.wait(timeout=5) is not None
        assert "stopping a previous run" in stopped.stdout
        assert stopped.returncode == ExitCode.KAFKA_UNREACHABLE, stopped.stderr
    finally:
        leftover.kill()
        leftover.wait()


def test_each_run_logs_in_its_own_folder_and_old_ones_go(tmp_path: Path) -> None:
    folders = []
    for _ in range(KEEP_RUN_LOGS + 3):
        folders.append(run_log_dir(tmp_path))
        time.sleep(0.002)
    assert len(set(folders)) == len(folders)
    kept = sorted(p for p in tmp_path.iterdir() if p.is_dir() and not p.is_symlink())
    assert kept == folders[-KEEP_RUN_LOGS:]
    assert (tmp_path / "latest").resolve() == folders[-1]


def test_status_line_says_labeled_rate_dead_letters_lag_and_model() -> None:
    status = Status(0, 0, published=320, labeled=300, lag=7, model_version="abc123")
    status.dead_letters.update({"invalid_json": 2, "id_not_integer": 1})
    status.per_second = 49.5
    line = status.line(hidden=250)
    for part in (
        "published 320",
        "labeled 300 (49.5/s)",
        "DLQ 3 (invalid_json 2, id_not_integer 1)",
        "lag 7",
        "model abc123",
        "250 rows not shown",
    ):
        assert part in line, line


def test_status_line_names_failed_api_requests_and_the_last_warning() -> None:
    status = Status(0, 0, api_detail="SPY: connection error (gaierror), retrying in 1.5s")
    status.api_problems.update({"error": 3})
    line = status.line(hidden=0)
    assert "API requests failed: error 3 (last: SPY: connection error (gaierror)" in line
    assert "rows not shown" not in line


def test_replay_without_a_file_replays_the_sample() -> None:
    from common.options import from_arguments
    from stocksent.run import SAMPLE_REPLAY, RunSettings

    settings = from_arguments(
        RunSettings,
        {"source": "replay", "classifier_metrics_port": "0", "producer_metrics_port": "0"},
        environ={},
    )
    assert settings.replay == SAMPLE_REPLAY and SAMPLE_REPLAY.is_file()


LISTENING_CLASSIFIER = """
import socket, sys, time
holder = socket.socket()
holder.bind(("127.0.0.1", int(sys.argv[1])))
holder.listen()
print("listening", flush=True)
time.sleep(120)
"""


def test_a_leftover_service_without_a_record_is_found_by_its_port(tmp_path: Path) -> None:
    # what older versions left behind: a classifier on the metrics port, no run record
    metrics = free_port_pair()
    leftover = subprocess.Popen(
        [sys.executable, "-c", LISTENING_CLASSIFIER, str(metrics), "stocksent", "classify"],
        stdout=subprocess.PIPE,
    )
    try:
        assert leftover.stdout is not None and leftover.stdout.readline() == b"listening\n"
        ports = [
            "--classifier-metrics-port",
            str(metrics),
            "--producer-metrics-port",
            str(metrics + 1),
        ]
        refused = _stocksent("run", "--log-dir", str(tmp_path), *ports)
        assert refused.returncode == ExitCode.IN_USE, refused.stderr
        assert f"classifier {leftover.pid}" in refused.stderr
        stopped = _stocksent(
            "run", "--log-dir", str(tmp_path), *ports, "--stop-previous",
            "--bootstrap-servers", "nowhere:1",
        )  # fmt: skip
        assert leftover.wait(timeout=5) is not None
        assert stopped.returncode == ExitCode.KAFKA_UNREACHABLE, stopped.stderr
    finally:
        leftover.kill()
        leftover.wait()


def test_only_stocksent_commands_count_as_leftovers_not_paths_that_name_it() -> None:
    from common.preflight import command_line
    from stocksent.run import _alive_stocksent

    sleep = [sys.executable, "-c", "import time; time.sleep(60)"]
    command = subprocess.Popen([*sleep, "stocksent", "classify"])
    checkout = subprocess.Popen([*sleep, "/home/ci/stocksent/tests/test_x.py"])
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not all(  # both have exec'd their argv
            b"time.sleep" in Path(f"/proc/{p.pid}/cmdline").read_bytes()
            for p in (command, checkout)
        ):
            time.sleep(0.05)
        # the description is the command line, shortened: how much of it shows depends on
        # the length of the interpreter's path, so compare with the shortened line itself
        assert _alive_stocksent(command.pid) == command_line(command.pid) != ""
        assert _alive_stocksent(checkout.pid) == ""
    finally:
        for process in (command, checkout):
            process.kill()
            process.wait()
    assert _alive_stocksent(command.pid) == ""  # gone


def test_run_serves_from_a_model_store_created_with_the_committed_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from common.options import SettingsError, from_arguments
    from model.predictor import PRETRAINED_DIR
    from model.store import ModelStore, read_manifest
    from stocksent.run import RunSettings, classifier_argv, prepare_model_store

    def resolve(given: dict[str, str]) -> RunSettings:
        return from_arguments(RunSettings, given, environ={})

    monkeypatch.setenv("STOCKSENT_STATE_DIR", str(tmp_path / "state"))
    settings = resolve({})
    line = prepare_model_store(settings)
    committed = read_manifest(PRETRAINED_DIR)["model_version"]
    root = tmp_path / "state" / "models"
    assert settings.model_store == str(root) and ModelStore(root).current() == committed
    assert f"model store {root}: serving {committed}" in line
    argv = classifier_argv(settings, "127.0.0.1:9092")
    assert argv[argv.index("--model-store") + 1] == str(root) and "--model" not in argv

    ModelStore(root).add_version(PRETRAINED_DIR)  # a second run finds the store as it is
    (root / "CURRENT").write_text(f"{committed}\n")
    again = resolve({})
    assert f"serving {committed}" in prepare_model_store(again)
    assert len(ModelStore(root).history()) == 1  # not seeded twice

    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("not a store")
    busy = resolve({"model_store": str(tmp_path / "notes")})
    with pytest.raises(SettingsError, match="is a folder but not a model store"):
        prepare_model_store(busy)

    with_model = resolve({"model": str(PRETRAINED_DIR)})
    assert prepare_model_store(with_model) == f"model: {PRETRAINED_DIR}"
    argv = classifier_argv(with_model, "127.0.0.1:9092")
    assert "--model-store" not in argv and argv[argv.index("--model") + 1] == str(PRETRAINED_DIR)


def test_run_starts_each_child_with_its_own_command(tmp_path: Path) -> None:
    from common.options import from_arguments
    from stocksent.run import RunSettings, _spawn, classifier_argv

    settings = from_arguments(RunSettings, {"model": "py:bench.constant_model:predictor"}, {})
    child = _spawn("classifier", ["--help"], 0, tmp_path)
    assert child.process.wait(timeout=60) == 0 and child.name == "classifier"
    assert "stocksent classify" in child.log_path.read_text()
    assert classifier_argv(settings, "b:1")[:2] == ["--bootstrap-servers", "b:1"]


def test_run_starts_the_aggregator_with_options_it_accepts(tmp_path: Path) -> None:
    from common.options import from_arguments, parse_settings
    from stocksent.run import RunSettings, _spawn, aggregator_argv
    from stream.aggregate.settings import AggregatorSettings

    settings = from_arguments(RunSettings, {"aggregator_emit_every": "2s"}, {})
    argv = aggregator_argv(settings, "b:1")
    aggregator = parse_settings(AggregatorSettings, argv, "stocksent aggregate", None, {})
    assert aggregator.kafka.bootstrap_servers == "b:1"
    assert aggregator.emit_every_ms == 2000 and aggregator.instance_id == "run"
    child = _spawn("aggregator", ["--help"], 0, tmp_path)
    assert child.process.wait(timeout=60) == 0
    assert "stocksent aggregate" in child.log_path.read_text()


@pytest.mark.parametrize(
    "ports",
    [
        {"aggregator_metrics_port": "9300"},  # the classifier's default
        {"aggregator_metrics_port": "7000", "producer_metrics_port": "7000"},
    ],
)
def test_the_three_metrics_ports_must_differ(ports: dict[str, str]) -> None:
    from common.options import SettingsError, from_arguments
    from stocksent.run import RunSettings

    with pytest.raises(SettingsError, match="--aggregator-metrics-port must differ"):
        from_arguments(RunSettings, ports, {})


def test_status_line_counts_the_aggregators_final_windows_from_its_metrics() -> None:
    from prometheus_client import CollectorRegistry, start_http_server

    from stream.aggregate.metrics import AggregatorMetrics

    registry = CollectorRegistry()
    metrics = AggregatorMetrics(registry, ["60s", "1h"], ["SPY"], top=3)
    metrics.emitted.labels("60s", "true").inc(4)
    metrics.emitted.labels("1h", "true").inc(1)
    metrics.emitted.labels("60s", "false").inc(50)  # early updates are not windows done
    port = free_port()
    server, thread = start_http_server(port, "127.0.0.1", registry=registry)
    try:
        status = Status(0, 0, port)
        status.refresh()
    finally:
        server.shutdown()
        thread.join(timeout=5)
    assert status.windows == 5
    assert "windows 5" in status.line(hidden=0)
    assert "windows" not in Status(0, 0).line(hidden=0)
