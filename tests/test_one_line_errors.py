"""Each way a new user can get a command wrong ends in seconds with one line naming the input
or address and what to check, a documented exit code, and no traceback (issue 20)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from common.failures import ExitCode
from stocksent.local_kafka import free_port, free_port_pair
from stocksent.service_process import REPO_ROOT

CONSTANT_MODEL = "py:bench.constant_model:predictor"


@contextlib.contextmanager
def listening(port: int) -> Iterator[socket.socket]:
    """Another program holding `port` on 127.0.0.1."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", port))
        holder.listen()
        yield holder


def stocksent(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str, float]:
    """Runs `stocksent ARGS` as a user would: (exit code, stdout, stderr, seconds)."""
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "stocksent.cli", *args],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT), **(env or {})},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return result.returncode, result.stdout, result.stderr, time.monotonic() - started


def assert_one_line_error(code: int, out: str, err: str, seconds: float, expected: ExitCode) -> str:
    """The failure is exit code `expected`, within 10 s, one `error:` line, no traceback."""
    assert "Traceback" not in out + err, out + err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1, err
    assert code == expected, (code, err)
    assert seconds < 10, f"took {seconds:.1f}s"
    return errors[0]


# never created: the checks come before the learner's store is made
LEARN = "learn --model-store /nonexistent/stocksent-store"
KAFKA_COMMANDS = [
    "classify", "aggregate", "produce --synthetic", "tail", "top", "topics create", LEARN,
]  # fmt: skip


@pytest.mark.parametrize("command", KAFKA_COMMANDS)
def test_kafka_that_does_not_resolve(command: str) -> None:
    code, out, err, seconds = stocksent(*command.split(), "--bootstrap-servers", "nowhere:1")
    line = assert_one_line_error(code, out, err, seconds, ExitCode.KAFKA_UNREACHABLE)
    assert "nowhere:1" in line and "does not resolve" in line


@pytest.mark.parametrize("command", KAFKA_COMMANDS)
def test_kafka_that_refuses_within_the_connect_timeout(command: str) -> None:
    address = f"127.0.0.1:{free_port()}"
    code, out, err, seconds = stocksent(
        *command.split(), "--bootstrap-servers", address, "--connect-timeout", "2"
    )
    line = assert_one_line_error(code, out, err, seconds, ExitCode.KAFKA_UNREACHABLE)
    assert address in line and "connection refused" in line and "within 2s" in line


def test_run_with_a_kafka_that_is_not_there() -> None:
    address = f"127.0.0.1:{free_port()}"
    code, out, err, seconds = stocksent(
        "run", "--bootstrap-servers", address, "--connect-timeout", "2"
    )
    assert address in assert_one_line_error(code, out, err, seconds, ExitCode.KAFKA_UNREACHABLE)


def test_classify_checks_kafka_before_loading_the_model() -> None:
    # the committed model takes 8-13 s to load: an answer in seconds means it was not loaded
    code, out, err, seconds = stocksent("classify", "--bootstrap-servers", "nowhere:1")
    assert_one_line_error(code, out, err, seconds, ExitCode.KAFKA_UNREACHABLE)
    assert "model" not in err.lower()


@pytest.mark.parametrize("command", ["classify", "produce --synthetic", LEARN])
def test_metrics_port_in_use_names_the_holder(command: str) -> None:
    port = free_port()
    with listening(port):
        code, out, err, seconds = stocksent(*command.split(), "--metrics-port", str(port))
    line = assert_one_line_error(code, out, err, seconds, ExitCode.IN_USE)
    assert f"127.0.0.1:{port} is in use by pid {os.getpid()}" in line
    assert "--metrics-port" in line


def test_run_metrics_port_in_use() -> None:
    port = free_port()
    with listening(port):
        code, out, err, seconds = stocksent("run", "--classifier-metrics-port", str(port))
    line = assert_one_line_error(code, out, err, seconds, ExitCode.IN_USE)
    assert "--classifier-metrics-port" in line


def test_kafka_port_held_by_another_program(tmp_path: Path) -> None:
    port = free_port_pair()
    env = {"STOCKSENT_CACHE_DIR": str(tmp_path)}  # no jars needed: it fails before them
    with listening(port):
        code, out, err, seconds = stocksent("kafka", "up", "--port", str(port), env=env)
        line = assert_one_line_error(code, out, err, seconds, ExitCode.IN_USE)
        assert f"Kafka port 127.0.0.1:{port} is in use by pid {os.getpid()}" in line
        code, out, err, seconds = stocksent(
            "run", "--kafka-port", str(port), "--model", CONSTANT_MODEL, env=env
        )
        line = assert_one_line_error(code, out, err, seconds, ExitCode.IN_USE)
        assert "--kafka-port" in line


def test_model_that_is_not_a_model(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a model")
    for command in ("classify", "run"):
        code, out, err, seconds = stocksent(command, "--model", str(tmp_path))
        line = assert_one_line_error(code, out, err, seconds, ExitCode.BAD_INPUT)
        assert str(tmp_path) in line and "saved_model.pb" in line


def test_batch_size_that_is_not_a_number() -> None:
    code, out, err, seconds = stocksent("classify", "--batch-size", "abc")
    line = assert_one_line_error(code, out, err, seconds, ExitCode.BAD_INPUT)
    assert "--batch-size: 'abc' is not valid: must be a whole number" in line
    assert "invalid literal" not in line


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("missing.jsonl", None, "no such file"),
        ("rows.csv", "text,label\nhello,bullish\n", "no `message` column"),
        ("notes.txt", "hello", "unknown replay format"),
        ("empty.jsonl", "\n", "no message in it"),
    ],
)
def test_bad_replay_file_is_found_before_anything_starts(
    tmp_path: Path, name: str, content: str | None, expected: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    for command in (["run", "--source", "replay"], ["produce"]):
        code, out, err, seconds = stocksent(*command, "--replay", str(path))
        line = assert_one_line_error(code, out, err, seconds, ExitCode.BAD_INPUT)
        assert expected in line
        assert "Kafka" not in out, "it started something before checking its input"


def test_debug_shows_the_traceback() -> None:
    code, _, err, _ = stocksent("tail", "--bootstrap-servers", "nowhere:1", "--debug")
    assert code == ExitCode.KAFKA_UNREACHABLE
    assert "Traceback" in err


def test_a_port_that_is_not_kafka() -> None:
    port = free_port()
    with listening(port):  # accepts connections, never answers like a broker
        code, out, err, seconds = stocksent(
            "topics", "create", "--bootstrap-servers", f"127.0.0.1:{port}", "--connect-timeout", "2"
        )
    line = assert_one_line_error(code, out, err, seconds, ExitCode.KAFKA_UNREACHABLE)
    assert f"no Kafka answered at 127.0.0.1:{port} within 2s" in line
