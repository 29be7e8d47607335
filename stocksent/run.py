"""`stocksent run` (and `make run`): the whole pipeline on one machine, shown as it flows.

Checks its inputs first (replay file, model, ports, Kafka, a previous run still running),
then starts the local Apache Kafka unless `--bootstrap-servers` names a running cluster,
creates the topics, starts the classifier, the aggregator (per-symbol windows: watch them
with `stocksent top`) and the producer (synthetic by default, because the live API may be out
of reach) as child processes, and shows labeled records, dead letters and a status line.
Ctrl-C, SIGTERM, SIGHUP (the terminal closed), a closed output (`| head`) or `--duration`
stop, in order, the producer, the classifier, the aggregator and the broker it started.
Children also get SIGTERM from the kernel if `run` itself is killed (SIGKILL).

Exit codes: 0 stopped as asked, 1 a child failed, 2 bad input, 3 Kafka unreachable,
4 a port in use or a previous run still running (`--stop-previous` stops it).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from common import topics
from common.checkout import SAMPLES
from common.failures import CommandError, ExitCode
from common.kafka_settings import CONNECT_TIMEOUT_OPTION, KafkaConnection
from common.metrics_endpoint import metrics_port_option
from common.options import (
    SettingsError,
    boolean,
    from_arguments,
    non_negative_int,
    optional_path,
    parse_flags,
    parser_for,
    positive_float,
    setting,
    shared,
    text,
)
from common.preflight import check_kafka, check_port_free, command_line, port_owner
from common.shared_options import MODEL_STORE_OPTION, PARTITIONS_OPTION
from common.symbols import symbol_list
from stocksent.live_view import RowLimiter, Screen, Status
from stocksent.local_kafka import KAFKA_PORT_OPTION, LocalKafka, LocalKafkaError, cache_root
from stocksent.service_process import ServiceExitedError, ServiceProcess, StopAskedError
from stream.aggregate import durations
from stream.settings import MODEL_OPTION

SOURCES = ("synthetic", "live", "replay")
SAMPLE_REPLAY = SAMPLES / "stocktwits-messages.jsonl"


@dataclass(frozen=True)
class RunSettings:
    """Settings of `stocksent run`. Its producer's options have their own variables
    (`STOCKSENT_RUN_*`): their defaults differ from `stocksent produce`'s."""

    source: str = setting(text, "synthetic", "where messages come from", choices=SOURCES)
    symbols: tuple[str, ...] = setting(
        symbol_list, ("SPY", "AAPL", "TSLA"), "symbols the live source polls", env="run_symbols"
    )
    rate: float = setting(
        positive_float, 5.0, "messages/s of the synthetic and replay sources", env="run_rate"
    )
    replay: Path | None = setting(
        optional_path,
        None,
        "file for --source replay: API JSON, JSONL or CSV (default: the repo's sample, "
        "samples/stocktwits-messages.jsonl)",
        env="run_replay",
    )
    model: str = shared(MODEL_OPTION)
    model_store: str = shared(MODEL_STORE_OPTION)
    bootstrap_servers: str = setting(
        text,
        "",
        "use this Kafka instead of starting a local one (empty: start one)",
        env="run_bootstrap_servers",
    )
    kafka_port: int = shared(KAFKA_PORT_OPTION)
    connect_timeout: float = shared(CONNECT_TIMEOUT_OPTION)
    partitions: int = shared(PARTITIONS_OPTION)
    classifier_metrics_port: int = shared(metrics_port_option("classifier"))
    producer_metrics_port: int = shared(metrics_port_option("producer"))
    aggregator_metrics_port: int = shared(metrics_port_option("aggregator"))
    aggregator_emit_every: durations.Duration = setting(
        durations.duration,
        "5s",
        "how often the aggregator updates its open windows (what `stocksent top` shows "
        "before a window is final; 0: final windows only)",
        env="run_aggregator_emit_every",
    )
    duration: int = setting(
        non_negative_int, 0, "stop by itself after this many seconds (0 = never)"
    )
    rows_per_second: float = setting(
        positive_float, 4.0, "rows the live view prints a second at most"
    )
    log_dir: Path | None = setting(
        optional_path,
        None,
        "child logs, a folder per run (default ~/.cache/stocksent/run)",
    )
    stop_previous: bool = setting(
        boolean,
        False,
        "stop a previous run that is still running instead of refusing to start",
        is_flag=True,
    )

    def __post_init__(self) -> None:
        if self.source == "replay":
            object.__setattr__(self, "replay", _replay_file(self.replay))
        if not self.model and not self.model_store:
            object.__setattr__(self, "model_store", str(default_model_store()))
        ports = [port for _, port, _ in self.metrics_ports if port]
        if len(set(ports)) < len(ports):
            flags = [flag for _, _, flag in self.metrics_ports]
            raise SettingsError(f"{', '.join(flags[:-1])} and {flags[-1]} must differ")

    @property
    def metrics_ports(self) -> tuple[tuple[str, int, str], ...]:
        """(child, its metrics port, the flag that sets it) of every child `run` starts."""
        return (
            ("classifier", self.classifier_metrics_port, "--classifier-metrics-port"),
            ("producer", self.producer_metrics_port, "--producer-metrics-port"),
            ("aggregator", self.aggregator_metrics_port, "--aggregator-metrics-port"),
        )

    @property
    def connection(self) -> KafkaConnection:
        """The Kafka given by --bootstrap-servers (empty: the local one `run` starts)."""
        return KafkaConnection(
            bootstrap_servers=self.bootstrap_servers or f"127.0.0.1:{self.kafka_port}",
            connect_timeout=self.connect_timeout,
        )


def _replay_file(given: Path | None) -> Path:
    """The file `--source replay` replays, checked (the repo's sample when none is named)."""
    from producers.replay import ReplayError, check_file

    if given is None and not SAMPLE_REPLAY.is_file():
        raise SettingsError("--source replay needs --replay FILE")
    path = SAMPLE_REPLAY if given is None else given
    if not path.is_file():
        raise SettingsError(f"--replay: {path}: no such file")
    try:
        check_file(path)
    except ReplayError as err:
        raise SettingsError(f"--replay: {err}") from None
    return path


def default_model_store() -> Path:
    """Where `run` keeps its model store unless told: models/ in the state directory."""
    from producers.state import state_dir

    return state_dir() / "models"


READY_TIMEOUT_S = 120.0
STATUS_EVERY_S = 5.0
STATUS_REPEAT_S = 60.0
KEEP_RUN_LOGS = 10
RUN_RECORD = "active.json"
PUBLISHED_LINE = re.compile(rb"\b(replay|synthetic): (\d+) message\(s\) published")


# ---- children: stocksent.service_process supervises them --------------------------------


# the child's name (its log, the run record) -> its stocksent command
CHILD_COMMANDS = {"classifier": "classify", "aggregator": "aggregate", "producer": "produce"}
# the order `run` stops them in: no new messages first, then each service drains the one before
STOP_ORDER = ("producer", "classifier", "aggregator")


def _spawn(name: str, args: list[str], metrics_port: int, log_dir: Path) -> ServiceProcess:
    # Own session: a terminal's Ctrl-C reaches only `run`, which stops children in order;
    # pdeathsig (in ServiceProcess): the kernel stops them if `run` dies without doing so
    return ServiceProcess(
        CHILD_COMMANDS[name],
        args,
        log_dir / f"{name}.log",
        name=name,
        metrics_port=metrics_port,
        from_checkout=False,
        own_session=True,
    )


def _log_tail(child: ServiceProcess, lines: int = 12) -> str:
    """The end of a child's log of this run, without the effective-configuration block."""
    try:
        kept = [
            line
            for line in child.log_path.read_text(errors="replace").splitlines()
            if not line.startswith("  ")
        ]
    except OSError:
        return ""
    return "\n".join(kept[-lines:])


def _last_error(child: ServiceProcess) -> str:
    """The child's one-line error when it printed one (`... error: ...`), else ''."""
    for line in reversed(_log_tail(child, 40).splitlines()):
        if ": error: " in line or " ERROR " in line:
            return line.strip()
    return ""


def _wait_ready(child: ServiceProcess, timeout_s: float, stopping: Callable[[], bool]) -> None:
    """Returns once the child's /readyz answers 200; CommandError (with the child's own exit
    code where it has a meaning) when it exits first or is not ready in time."""
    try:
        child.wait_ready(timeout_s, "/readyz", stopping)
    except ServiceExitedError as err:
        code = err.returncode
        raise CommandError(
            f"{child.name} exited with code {code} while starting: "
            f"{_last_error(child) or 'see ' + str(child.log_path)}",
            ExitCode(code) if code in tuple(ExitCode) else ExitCode.FAILED,
        ) from None
    except RuntimeError:
        raise CommandError(
            f"{child.name} not ready on port {child.metrics_port} after {timeout_s:.0f}s "
            f"({child.log_path})"
        ) from None


def producer_argv(settings: RunSettings, bootstrap: str) -> list[str]:
    """The options of `stocksent produce` for the chosen source (its metrics port aside)."""
    argv = ["--bootstrap-servers", bootstrap]
    if settings.source == "synthetic":
        argv += ["--synthetic", "--rate", str(settings.rate), "--loop"]
    elif settings.source == "replay":  # RunSettings has checked that --replay names a file
        argv += ["--replay", str(settings.replay), "--rate", str(settings.rate)]
    else:
        argv += ["--symbols", ",".join(settings.symbols)]
    return argv


def classifier_argv(settings: RunSettings, bootstrap: str) -> list[str]:
    """The options of `stocksent classify` (its metrics port aside)."""
    argv = ["--bootstrap-servers", bootstrap]
    if settings.model:
        return [*argv, "--model", settings.model]
    return [*argv, "--model-store", settings.model_store]


def aggregator_argv(settings: RunSettings, bootstrap: str) -> list[str]:
    """The options of `stocksent aggregate` (its metrics port aside)."""
    return [
        "--bootstrap-servers",
        bootstrap,
        "--emit-every",
        settings.aggregator_emit_every.name,
        "--instance-id",
        "run",
    ]


def prepare_model_store(settings: RunSettings) -> str:
    """Unless --model is given: the store the classifier will follow, created serving the
    committed model when missing. Returns the line the header shows."""
    if settings.model:
        return f"model: {settings.model}"
    from model.store import ModelStore, StoreError

    root = settings.model_store
    try:
        serving = ModelStore.open_or_init(root)[0].current()
    except StoreError as err:
        raise SettingsError(f"--model-store: {err}") from None
    return (
        f"model store {root}: serving {serving} (`stocksent models list --store {root}`; "
        "promote or roll back there and the classifier follows)"
    )


# ---- checks before anything starts -------------------------------------------------------


def check_ports(settings: RunSettings) -> None:
    """The metrics ports are free; PortInUseError (exit 4) naming who holds one otherwise."""
    for child, number, flag in settings.metrics_ports:
        check_port_free("127.0.0.1", number, f"{child} metrics", flag)


# ---- a previous run ------------------------------------------------------------------------


def _alive_stocksent(pid: int) -> str:
    """The command line of `pid` when it is a live stocksent command (`stocksent ...` or
    `python -m stocksent.cli ...`) or a Kafka broker, else ''. A path that merely contains
    the word (a checkout named stocksent) does not count."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except (OSError, IndexError):
        return ""
    if state == "Z":
        return ""
    ours = any(
        Path(arg).name == "stocksent" or arg in ("stocksent.cli", "kafka.Kafka") for arg in argv
    )
    return command_line(pid) if ours else ""


def find_previous_run(record_path: Path, settings: RunSettings) -> dict[str, int]:
    """Processes of an earlier `stocksent run` still alive, by role: from its run record, and
    stocksent processes holding this run's metrics ports (left by runs without a record)."""
    found: dict[str, int] = {}
    with contextlib.suppress(OSError, ValueError, TypeError, AttributeError):
        record = orjson.loads(record_path.read_bytes())
        for name, pid in {"run": record["run_pid"], **record["children"]}.items():
            if int(pid) != os.getpid() and _alive_stocksent(int(pid)):
                found[name] = int(pid)
    for name, number, _ in settings.metrics_ports:
        owner = port_owner(number) if number else None
        if owner and _alive_stocksent(owner[0]) and owner[0] not in found.values():
            found[name] = owner[0]
    return found


def stop_processes(pids: Mapping[str, int], timeout_s: float = 20.0) -> None:
    """SIGTERM, then SIGKILL what is left after `timeout_s`."""
    for pid in pids.values():
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    # Gone means gone from the process table (or a zombie), not only "no longer a stocksent
    # command line": an exiting process loses its command line before it closes its sockets,
    # and the ports it held are checked next.
    while time.monotonic() < deadline and any(_exists(p) for p in pids.values()):
        time.sleep(0.2)
    for pid in pids.values():
        if _alive_stocksent(pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


def _exists(pid: int) -> bool:
    """True while `pid` is in the process table and not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _describe(pids: Mapping[str, int]) -> str:
    return ", ".join(f"{name} {pid}" for name, pid in pids.items())


# ---- the run -----------------------------------------------------------------------------


def run_log_dir(root: Path) -> Path:
    """A new folder for this run's child logs under `root` (older runs beyond the last
    KEEP_RUN_LOGS removed), and `root/latest` pointing at it."""
    root.mkdir(parents=True, exist_ok=True)
    now = time.time()
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now)) + f".{int(now * 1000) % 1000:03d}"
    folder = root / stamp
    number = 1
    while folder.exists():  # two runs in one millisecond: the names still sort in start order
        number += 1
        folder = root / f"{stamp}-{number:03d}"
    folder.mkdir()
    runs = sorted(
        p for p in root.iterdir() if p.is_dir() and not p.is_symlink() and p.name[:8].isdigit()
    )
    for old in runs[:-KEEP_RUN_LOGS]:
        for file in old.iterdir():
            file.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            old.rmdir()
    latest = root / "latest"
    with contextlib.suppress(OSError):
        latest.unlink(missing_ok=True)
        latest.symlink_to(folder.name)
    return folder


def run(settings: RunSettings, screen: Screen | None = None) -> int:
    """Runs the pipeline until asked to stop; returns the exit code."""
    screen = screen or Screen()
    model_line = prepare_model_store(settings)
    log_root = settings.log_dir or cache_root() / "run"
    log_root.mkdir(parents=True, exist_ok=True)
    record_path = log_root / RUN_RECORD
    _leave_previous_run(record_path, settings, screen)
    check_ports(settings)  # after a previous run's services let go of theirs
    if settings.bootstrap_servers:
        check_kafka(settings.connection)
    pipeline = _Pipeline(settings, screen, record_path, run_log_dir(log_root))
    return pipeline.run(model_line)


def _leave_previous_run(record_path: Path, settings: RunSettings, screen: Screen) -> None:
    """Refuses to start (exit 4) while an earlier run's processes live, unless told to stop
    them (--stop-previous)."""
    previous = find_previous_run(record_path, settings)
    if previous and not settings.stop_previous:
        what = (
            "a previous stocksent run is still running"
            if "run" in previous
            else "stocksent processes of an earlier run are still running"
        )
        raise CommandError(
            f"{what} ({_describe(previous)}): stop them with `stocksent run --stop-previous` "
            f"(or kill {' '.join(map(str, previous.values()))})",
            ExitCode.IN_USE,
        )
    if previous:
        screen.say(f"stopping a previous run ({_describe(previous)}) ...")
        stop_processes(previous)


class _Pipeline:
    """One run: the broker it started (if any), its children and the live view's consumers,
    started in order and stopped in reverse."""

    def __init__(
        self, settings: RunSettings, screen: Screen, record_path: Path, log_dir: Path
    ) -> None:
        self.settings = settings
        self.screen = screen
        self.record_path = record_path
        self.log_dir = log_dir
        self.broker: LocalKafka | None = None
        self.children: list[ServiceProcess] = []
        self.consumers: list[Any] = []
        self.stop_asked = False
        self.starting = True

    def _on_signal(self, signum: int, _frame: object) -> None:
        self.stop_asked = True
        if self.starting:  # nothing to drain yet: leave the start-up at once
            raise StopAskedError(signal.Signals(signum).name)

    def run(self, model_line: str) -> int:
        """Starts everything, shows the stream until a stop, stops everything: the exit code."""
        signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
        handlers = {sig: signal.signal(sig, self._on_signal) for sig in signals}
        code = ExitCode.OK
        try:
            self._start(model_line)
            self.starting = False
            if self.stop_asked or self.screen.closed:
                raise StopAskedError
            code = _view(self.settings, self.screen, self.children, self.consumers, self.stopping)
        except StopAskedError:
            pass
        except (CommandError, LocalKafkaError) as err:
            # one line for the user; the child's own log has the rest
            self.screen.warn(f"stocksent run: error: {str(err).strip().splitlines()[0]}")
            code = err.code if isinstance(err, CommandError) else ExitCode.FAILED
        finally:
            self.starting = False
            self._stop_all(code)
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
            self.screen.say(f"all stopped (exit {int(code)})")
        return int(code)

    def stopping(self) -> bool:
        """True once a stop was asked for."""
        return self.stop_asked

    def _start(self, model_line: str) -> None:
        settings, screen = self.settings, self.screen
        bootstrap = self._start_kafka()
        from stocksent.topics_cli import create_topics

        connection = KafkaConnection(bootstrap_servers=bootstrap)
        created = create_topics(connection, settings.partitions)
        screen.say(f"topics ready (created: {', '.join(created) or 'none, all existed'})")
        if screen.closed:  # `| head` already has what it wanted: start nothing more
            raise StopAskedError
        classifier = self._spawn(
            "classifier", classifier_argv(settings, bootstrap), settings.classifier_metrics_port
        )
        screen.say(model_line)
        screen.say(f"loading the model (logs: {self.log_dir}) ...")
        aggregator = self._spawn(
            "aggregator", aggregator_argv(settings, bootstrap), settings.aggregator_metrics_port
        )
        for child in (classifier, aggregator):
            if child.metrics_port:
                _wait_ready(child, READY_TIMEOUT_S, lambda: self.stop_asked or screen.closed)
        # the live view starts at this moment's records, however late its own start-up ends
        since_ms = int(time.time() * 1000)
        self._spawn("producer", producer_argv(settings, bootstrap), settings.producer_metrics_port)
        from stream.tail import open_consumer

        self.consumers = [
            open_consumer(connection, topics.OUTPUT_TOPIC, since_ms),
            open_consumer(connection, topics.DLQ_TOPIC, since_ms),
        ]
        urls = [
            f"{name} http://127.0.0.1:{port}/metrics"
            for name, port, _ in settings.metrics_ports
            if port
        ]
        if urls:
            screen.say(f"metrics: {', '.join(urls)}")
        screen.say(
            f"per-symbol windows ({topics.BY_SYMBOL_TOPIC}): run `stocksent top` in another "
            "terminal"
        )
        screen.say(f"source: {_source_text(settings)}. Ctrl-C stops everything.\n")

    def _start_kafka(self) -> str:
        """The bootstrap address: --bootstrap-servers, else a local broker (started unless one
        already runs on the port: a broker someone else started is not ours to stop)."""
        if self.settings.bootstrap_servers:
            return self.settings.bootstrap_servers
        local = LocalKafka(port=self.settings.kafka_port)
        self.screen.say(f"starting Kafka on {local.bootstrap} (log {local.log_file}) ...")
        started = local.up(port_flag="--kafka-port")
        self.broker = local if started else None
        state = "started" if started else "already running, reused"
        self.screen.say(f"Kafka {local.kafka_version()} {state}")
        return local.bootstrap

    def _spawn(self, name: str, args: list[str], metrics_port: int) -> ServiceProcess:
        child = _spawn(name, args, metrics_port, self.log_dir)
        self.children.append(child)
        _write_record(self.record_path, self.children, self.broker, self.log_dir)
        return child

    def _stop_all(self, code: ExitCode) -> None:
        for consumer in self.consumers:
            with contextlib.suppress(Exception):
                consumer.close()
        self.screen.say("\nstopping ...")
        for name in STOP_ORDER:
            for child in self.children:
                if child.name == name:
                    returned = child.terminate(timeout=15.0)
                    if returned not in (0, None, -signal.SIGTERM) and code == 0:
                        self.screen.warn(
                            f"{name} stopped with code {returned} (log {child.log_path})"
                        )
        if self.broker is not None:
            self.broker.down()
            self.screen.say(f"Kafka stopped (data kept in {self.broker.data_dir})")
        self.record_path.unlink(missing_ok=True)


def _source_text(settings: RunSettings) -> str:
    if settings.source == "replay":
        return f"replay of {settings.replay} at {settings.rate:g} msgs/s"
    if settings.source == "live":
        return f"live StockTwits API, symbols {','.join(settings.symbols)}"
    return f"synthetic messages at {settings.rate:g} msgs/s"


def _write_record(
    path: Path, children: list[ServiceProcess], broker: LocalKafka | None, logs: Path
) -> None:
    record: dict[str, Any] = {
        "run_pid": os.getpid(),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "logs": str(logs),
        "children": {child.name: child.process.pid for child in children},
    }
    kafka_pid = broker.pid() if broker is not None else None
    if kafka_pid is not None:
        record["children"]["kafka"] = kafka_pid
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(orjson.dumps(record))
    tmp.replace(path)


def _view(
    settings: RunSettings,
    screen: Screen,
    children: list[ServiceProcess],
    consumers: list[Any],
    stopping: Callable[[], bool],
) -> ExitCode:
    """Shows rows and the status line until a stop; the exit code."""
    return _LiveView(settings, screen, children, consumers).show(stopping)


class _LiveView:
    """The rows of labeled records and dead letters, and a status line every few seconds."""

    ROW_WIDTH = 70
    DLQ_ROW_WIDTH = 60

    def __init__(
        self,
        settings: RunSettings,
        screen: Screen,
        children: list[ServiceProcess],
        consumers: list[Any],
    ) -> None:
        self.screen = screen
        self.children = children
        self.output, self.dead_letters = consumers
        self.status = Status(
            settings.classifier_metrics_port,
            settings.producer_metrics_port,
            settings.aggregator_metrics_port,
        )
        self.limiter = RowLimiter(settings.rows_per_second)
        self.duration = settings.duration
        self.producer_done: int | None = None
        self.all_done_said = False
        self.dlq_header_shown = False
        self.last_totals: tuple[float, ...] = ()
        self.repeat_at = 0.0

    def _dim(self, text: str) -> str:
        from stream.tail import paint

        return paint(text, "dim", self.screen.colour)

    def show(self, stopping: Callable[[], bool]) -> ExitCode:
        """Rows and status until a stop, the deadline, or a child's failure."""
        from stream.tail import HEADER

        self.screen.say(self._dim(HEADER))
        deadline = time.monotonic() + self.duration if self.duration else None
        next_status = time.monotonic() + STATUS_EVERY_S
        while not stopping() and not self.screen.closed:
            if deadline is not None and time.monotonic() >= deadline:
                break
            self._show_records()
            if self._a_child_failed():
                return ExitCode.FAILED
            if time.monotonic() >= next_status:
                next_status = time.monotonic() + STATUS_EVERY_S
                self._show_status()
        return ExitCode.OK

    def _show_records(self) -> None:
        from stream.tail import DLQ_HEADER, format_dlq_row, format_row, poll_in_time_order

        colour = self.screen.colour
        for record in poll_in_time_order(self.output, timeout_ms=150):
            if self.limiter.allow():
                try:
                    row = format_row(orjson.loads(record.value), self.ROW_WIDTH, colour)
                except (orjson.JSONDecodeError, TypeError, ValueError, AttributeError):
                    row = f"(undecodable record at offset {record.offset})"
                self.screen.say(row)
        # dead letters are rare and each one matters: never hidden
        for record in poll_in_time_order(self.dead_letters, timeout_ms=50):
            if not self.dlq_header_shown:
                self.screen.say(self._dim("dead letter: " + DLQ_HEADER))
                self.dlq_header_shown = True
            row = format_dlq_row(record.value, record.headers, self.DLQ_ROW_WIDTH, colour)
            self.screen.say("dead letter: " + row)

    def _a_child_failed(self) -> bool:
        """True (and said) when a child exited other than a producer that finished its source."""
        for child in self.children:
            exited = child.process.poll()
            if exited is None:
                continue
            if child.name == "producer" and exited == 0:
                if self.producer_done is None:
                    self.producer_done = _published_count(child)
                    self.screen.say(
                        self._dim(
                            f"── producer finished: {self.producer_done:,} messages published"
                        )
                    )
                continue
            self.screen.warn(
                f"stocksent run: error: {child.name} exited with code {exited}: "
                f"{_last_error(child) or 'see its log'} ({child.log_path})"
            )
            return True
        return False

    def _show_status(self) -> None:
        status = self.status
        status.refresh()
        if status.api_problems:
            status.api_detail = _last_warning(self.children)
        done = self.producer_done
        if done is not None:
            status.published = max(status.published, done)
        # an idle pipeline repeats its status once a minute, not every few seconds
        if status.totals() != self.last_totals or time.monotonic() >= self.repeat_at:
            self.screen.say(self._dim(status.line(self.limiter.hidden)))
            self.last_totals = status.totals()
            self.repeat_at = time.monotonic() + STATUS_REPEAT_S
        if done is not None and not self.all_done_said and status.consumed >= done:
            dlq = sum(status.dead_letters.values())
            self.screen.say(
                f"── all {done:,} messages processed: {int(status.labeled):,} "
                f"labeled, {dlq:,} dead-lettered (see them: stocksent tail --dlq "
                "--from-beginning). Ctrl-C stops everything."
            )
            self.all_done_said = True


def _last_warning(children: list[ServiceProcess]) -> str:
    """The producer's last logged warning, without its time and logger (for the status)."""
    for child in children:
        if child.name == "producer":
            for line in reversed(_log_tail(child, 40).splitlines()):
                if " WARNING " in line or " ERROR " in line:
                    message = line.split(": ", 1)[-1]
                    return message if len(message) <= 80 else message[:79] + "…"
    return ""


def _published_count(child: ServiceProcess) -> int:
    """How many messages a finished producer published, from its last summary line."""
    try:
        found = PUBLISHED_LINE.findall(child.log_path.read_bytes())
    except OSError:
        return 0
    return int(found[-1][1]) if found else 0


def main(argv: list[str], prog: str = "stocksent run") -> int:
    """Entry point of `stocksent run`."""
    parser = parser_for(
        RunSettings, prog, __doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    settings = from_arguments(RunSettings, parse_flags(parser, argv))  # stocksent.cli: exit 2
    return run(settings)
