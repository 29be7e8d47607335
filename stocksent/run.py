"""`stocksent run` (and `make run`): the whole pipeline on one machine, shown as it flows.

Starts the local Apache Kafka unless `--bootstrap-servers` names a running cluster, creates
the topics, starts the producer (synthetic by default, because the live API may be out of
reach) and the classifier as child processes, then follows the labeled topic. Ctrl-C (or
SIGTERM, or `--duration`) stops, in order, the producer, the classifier, the follower and the
broker it started, and exits 0.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from stocksent import topics
from stocksent.local_kafka import DEFAULT_PORT, LocalKafka, LocalKafkaError, cache_root
from stocksent.options import (
    Option,
    SettingsError,
    add_options,
    comma_list,
    non_negative_int,
    optional_path,
    port,
    positive_float,
    positive_int,
    resolve,
    text,
)
from stocksent.topics_cli import create_topics

SOURCES = ("synthetic", "live", "replay")

OPTIONS: tuple[Option, ...] = (
    Option("source", text, "synthetic", "where messages come from", choices=SOURCES),
    Option("symbols", comma_list, ("SPY", "AAPL", "TSLA"), "watchlist for the live source"),
    Option("rate", positive_float, 5.0, "messages/s of the synthetic and replay sources"),
    Option("replay", optional_path, None, "file for --source replay (API JSON, JSONL or CSV)"),
    Option("bootstrap_servers", text, "", "use this Kafka instead of starting a local one"),
    Option("kafka_port", port, DEFAULT_PORT, "port of the local Kafka started by run"),
    Option("partitions", positive_int, topics.DEFAULT_PARTITIONS, "input/output partitions"),
    Option("classifier_metrics_port", port, 9300, "classifier /metrics, /healthz, /readyz"),
    Option("producer_metrics_port", port, 9301, "producer /metrics"),
    Option("duration", non_negative_int, 0, "stop by itself after this many seconds (0 = never)"),
    Option("log_dir", optional_path, None, "child logs (default ~/.cache/stocksent/run)"),
)

READY_TIMEOUT_S = 120.0


@dataclass
class Child:
    """A child process of the run, with the log it writes."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path | None
    log: IO[bytes] | None = field(default=None, repr=False)


def _stocksent(*args: str) -> list[str]:
    return [sys.executable, "-m", "stocksent.cli", *args]


def _spawn(name: str, argv: list[str], log_dir: Path | None) -> Child:
    log = None
    log_path = None
    if log_dir is not None:
        log_path = log_dir / f"{name}.log"
        log = log_path.open("ab")
    # own session: a terminal's Ctrl-C reaches only `run`, which stops children in order
    process = subprocess.Popen(
        argv,
        stdout=log,
        stderr=subprocess.STDOUT if log else None,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    return Child(name, process, log_path, log)


def _stop(child: Child, timeout_s: float = 15.0) -> int | None:
    if child.process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            child.process.send_signal(signal.SIGTERM)
        try:
            child.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            child.process.kill()
            child.process.wait()
    if child.log is not None:
        child.log.close()
    return child.process.returncode


def _wait_ready(url: str, child: Child, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if child.process.poll() is not None:
            raise RuntimeError(f"{child.name} exited with code {child.process.returncode}")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1) as response:
            if response.status == 200:
                return
        time.sleep(0.5)
    raise RuntimeError(f"{child.name} not ready at {url} after {timeout_s:.0f}s")


def _log_tail(child: Child, lines: int = 30) -> str:
    if child.log_path is None:
        return ""
    try:
        return "\n".join(child.log_path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def producer_argv(settings: dict[str, Any], bootstrap: str) -> list[str]:
    """The `stocksent produce` command line for the chosen source."""
    argv = _stocksent(
        "produce",
        "--bootstrap-servers",
        bootstrap,
        "--metrics-port",
        str(settings["producer_metrics_port"]),
    )
    source = settings["source"]
    if source == "synthetic":
        argv += ["--synthetic", "--rate", str(settings["rate"]), "--loop"]
    elif source == "replay":  # main() has checked that --replay names a file
        argv += ["--replay", str(settings["replay"]), "--rate", str(settings["rate"])]
    else:
        argv += ["--symbols", ",".join(settings["symbols"])]
    return argv


def run(settings: dict[str, Any]) -> int:
    """Runs the pipeline until interrupted; returns the exit code."""
    log_dir = settings["log_dir"] or cache_root() / "run"
    log_dir.mkdir(parents=True, exist_ok=True)
    broker: LocalKafka | None = None
    bootstrap = settings["bootstrap_servers"]
    if not bootstrap:
        broker = LocalKafka(port=settings["kafka_port"])
        started = broker.up()
        print(
            f"Kafka {broker.kafka_version()} {'started' if started else 'reused'} "
            f"on {broker.bootstrap} (log {broker.log_file})",
            flush=True,
        )
        if not started:
            broker = None  # not ours to stop
        bootstrap = f"127.0.0.1:{settings['kafka_port']}"
    created = create_topics({"bootstrap_servers": bootstrap}, settings["partitions"])
    print(f"topics ready (created: {', '.join(created) or 'none, all existed'})", flush=True)

    interrupted = False

    def on_signal(_signum: int, _frame: object) -> None:
        nonlocal interrupted
        interrupted = True

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    children: list[Child] = []
    code = 0
    try:
        classifier = _spawn(
            "classifier",
            _stocksent(
                "classify",
                "--bootstrap-servers",
                bootstrap,
                "--metrics-port",
                str(settings["classifier_metrics_port"]),
            ),
            log_dir,
        )
        children.append(classifier)
        cport = settings["classifier_metrics_port"]
        if cport:
            _wait_ready(f"http://127.0.0.1:{cport}/readyz", classifier, READY_TIMEOUT_S)
        # the live view starts at this moment's records, however late its own start-up ends
        since_ms = int(time.time() * 1000)
        children.append(_spawn("producer", producer_argv(settings, bootstrap), log_dir))
        print(f"logs: {log_dir}/classifier.log, {log_dir}/producer.log", flush=True)
        if cport:
            print(
                f"metrics: classifier http://127.0.0.1:{cport}/metrics, producer "
                f"http://127.0.0.1:{settings['producer_metrics_port']}/metrics",
                flush=True,
            )
        print("Ctrl-C stops everything.\n", flush=True)
        children.append(
            _spawn(
                "tail",
                _stocksent("tail", "--bootstrap-servers", bootstrap, "--since-ms", str(since_ms)),
                None,
            )
        )
        deadline = time.monotonic() + settings["duration"] if settings["duration"] else None
        while not interrupted:
            if deadline is not None and time.monotonic() >= deadline:
                break
            for child in children:
                exited = child.process.poll()
                if exited is not None and not (child.name == "producer" and exited == 0):
                    print(
                        f"\n{child.name} exited with code {exited}\n{_log_tail(child)}",
                        file=sys.stderr,
                        flush=True,
                    )
                    code = 1
                    interrupted = True
            time.sleep(0.2)
    except RuntimeError as err:
        print(f"error: {err}", file=sys.stderr)
        for child in children:
            tail = _log_tail(child)
            if tail:
                print(f"--- {child.name} log ---\n{tail}", file=sys.stderr)
        code = 1
    finally:
        print("\nstopping ...", flush=True)
        # producer first so nothing new arrives, then the classifier drains and commits
        for name in ("producer", "classifier", "tail"):
            for child in children:
                if child.name == name:
                    returned = _stop(child)
                    if returned not in (0, None, -signal.SIGTERM) and code == 0:
                        print(f"{name} stopped with code {returned}", file=sys.stderr)
        if broker is not None:
            broker.down()
            print(f"Kafka stopped (data kept in {broker.data_dir})", flush=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        print(f"all stopped (exit {code})", flush=True)
    return code


def main(argv: list[str], prog: str = "stocksent run") -> int:
    """Entry point of `stocksent run`."""
    parser = argparse.ArgumentParser(prog=prog, description=__doc__)
    add_options(parser, OPTIONS)
    try:
        settings = resolve(parser.parse_args(argv), OPTIONS)
        if settings["source"] == "replay" and settings["replay"] is None:
            raise SettingsError("--source replay needs --replay FILE")
        return run(settings)
    except SettingsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except LocalKafkaError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
