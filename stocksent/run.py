"""`stocksent run` (and `make run`): the whole pipeline on one machine, shown as it flows.

Checks its inputs first (replay file, model, ports, Kafka, a previous run still running),
then starts the local Apache Kafka unless `--bootstrap-servers` names a running cluster,
creates the topics, starts the classifier and the producer (synthetic by default, because
the live API may be out of reach) as child processes, and shows labeled records, dead
letters and a status line. Ctrl-C, SIGTERM, SIGHUP (the terminal closed), a closed output
(`| head`) or `--duration` stop, in order, the producer, the classifier and the broker it
started. Children also get SIGTERM from the kernel if `run` itself is killed (SIGKILL).

Exit codes: 0 stopped as asked, 1 a child failed, 2 bad input, 3 Kafka unreachable,
4 a port in use or a previous run still running (`--stop-previous` stops it).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from common import topics
from common.children import exits_with_parent
from common.failures import BadInputError, CommandError, ExitCode
from common.options import (
    Option,
    SettingsError,
    add_options,
    boolean,
    comma_list,
    non_negative_int,
    optional_path,
    port,
    positive_float,
    positive_int,
    resolve,
    text,
)
from common.preflight import check_kafka, check_port_free, command_line, port_owner
from stocksent.live_view import RowLimiter, Screen, Status
from stocksent.local_kafka import DEFAULT_PORT, LocalKafka, LocalKafkaError, cache_root

SOURCES = ("synthetic", "live", "replay")
SAMPLE_REPLAY = Path(__file__).resolve().parent.parent / "samples" / "stocktwits-messages.jsonl"

OPTIONS: tuple[Option, ...] = (
    Option("source", text, "synthetic", "where messages come from", choices=SOURCES),
    Option("symbols", comma_list, ("SPY", "AAPL", "TSLA"), "watchlist for the live source"),
    Option("rate", positive_float, 5.0, "messages/s of the synthetic and replay sources"),
    Option(
        "replay",
        optional_path,
        None,
        "file for --source replay: API JSON, JSONL or CSV (default: the repo's sample, "
        "samples/stocktwits-messages.jsonl)",
    ),
    Option(
        "model",
        text,
        "",
        "serve this exported model directory instead of a model store's CURRENT",
    ),
    Option(
        "model_store",
        optional_path,
        None,
        "model store the classifier serves from and follows, created with the committed model "
        "when missing (default: models/ in the state directory, $STOCKSENT_STATE_DIR else "
        "~/.local/state/stocksent)",
    ),
    Option("bootstrap_servers", text, "", "use this Kafka instead of starting a local one"),
    Option("kafka_port", port, DEFAULT_PORT, "port of the local Kafka started by run"),
    Option("connect_timeout", positive_float, 10.0, "seconds to wait for --bootstrap-servers"),
    Option("partitions", positive_int, topics.DEFAULT_PARTITIONS, "input/output partitions"),
    Option("classifier_metrics_port", port, 9300, "classifier /metrics, /healthz, /readyz"),
    Option("producer_metrics_port", port, 9301, "producer /metrics"),
    Option("duration", non_negative_int, 0, "stop by itself after this many seconds (0 = never)"),
    Option("rows_per_second", positive_float, 4.0, "rows the live view prints a second at most"),
    Option(
        "log_dir",
        optional_path,
        None,
        "child logs, a folder per run (default ~/.cache/stocksent/run)",
    ),
    Option(
        "stop_previous",
        boolean,
        False,
        "stop a previous run that is still running instead of refusing to start",
        is_flag=True,
    ),
)

READY_TIMEOUT_S = 120.0
STATUS_EVERY_S = 5.0
STATUS_REPEAT_S = 60.0
KEEP_RUN_LOGS = 10
RUN_RECORD = "active.json"
PUBLISHED_LINE = re.compile(rb"\b(replay|synthetic): (\d+) message\(s\) published")


class StopAskedError(Exception):
    """A stop was asked for (signal, closed output) while `run` was still starting."""


# ---- children ----------------------------------------------------------------------------


@dataclass
class Child:
    """A child process of the run, with the log it writes."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path | None
    log: IO[bytes] | None = field(default=None, repr=False)


def _stocksent(*args: str) -> list[str]:
    return [sys.executable, "-m", "stocksent.cli", *args]


def _spawn(name: str, argv: list[str], log_dir: Path) -> Child:
    log_path = log_dir / f"{name}.log"
    log = log_path.open("wb")
    # Own session: a terminal's Ctrl-C reaches only `run`, which stops children in order;
    # pdeathsig: the kernel stops them if `run` dies without doing so (SIGKILL)
    process = subprocess.Popen(
        exits_with_parent(argv),
        stdout=log,
        stderr=subprocess.STDOUT,
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


def _log_tail(child: Child, lines: int = 12) -> str:
    """The end of a child's log of this run, without the effective-configuration block."""
    if child.log_path is None:
        return ""
    try:
        kept = [
            line
            for line in child.log_path.read_text(errors="replace").splitlines()
            if not line.startswith("  ")
        ]
    except OSError:
        return ""
    return "\n".join(kept[-lines:])


def _last_error(child: Child) -> str:
    """The child's one-line error when it printed one (`... error: ...`), else ''."""
    for line in reversed(_log_tail(child, 40).splitlines()):
        if ": error: " in line or " ERROR " in line:
            return line.strip()
    return ""


def _wait_ready(url: str, child: Child, timeout_s: float, stopping: Any) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if stopping():
            raise StopAskedError
        if child.process.poll() is not None:
            raise CommandError(
                f"{child.name} exited with code {child.process.returncode} while starting: "
                f"{_last_error(child) or 'see ' + str(child.log_path)}",
                ExitCode(child.process.returncode)
                if child.process.returncode in tuple(ExitCode)
                else ExitCode.FAILED,
            )
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1) as response:
            if response.status == 200:
                return
        time.sleep(0.3)
    raise CommandError(f"{child.name} not ready at {url} after {timeout_s:.0f}s ({child.log_path})")


def producer_argv(settings: Mapping[str, Any], bootstrap: str) -> list[str]:
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
    elif source == "replay":  # check_inputs has checked that --replay names a file
        argv += ["--replay", str(settings["replay"]), "--rate", str(settings["rate"])]
    else:
        argv += ["--symbols", ",".join(settings["symbols"])]
    return argv


def classifier_argv(settings: Mapping[str, Any], bootstrap: str) -> list[str]:
    """The `stocksent classify` command line."""
    argv = _stocksent(
        "classify",
        "--bootstrap-servers",
        bootstrap,
        "--metrics-port",
        str(settings["classifier_metrics_port"]),
    )
    if settings["model"]:
        return [*argv, "--model", settings["model"]]
    return [*argv, "--model-store", str(settings["model_store"])]


def default_model_store() -> Path:
    """Where `run` keeps its model store unless told: models/ in the state directory."""
    from producers.state import state_dir

    return state_dir() / "models"


def prepare_model_store(settings: dict[str, Any]) -> str:
    """Unless --model is given: the store the classifier will follow, created serving the
    committed model when missing. Returns the line the header shows."""
    if settings["model"]:
        return f"model: {settings['model']}"
    from model.store import ModelStore, StoreError

    root = settings["model_store"] = settings["model_store"] or default_model_store()
    try:
        serving = ModelStore.open_or_init(root)[0].current()
    except StoreError as err:
        raise SettingsError(f"--model-store: {err}") from None
    return (
        f"model store {root}: serving {serving} (`stocksent models list --store {root}`; "
        "promote or roll back there and the classifier follows)"
    )


# ---- checks before anything starts -------------------------------------------------------


def check_inputs(settings: dict[str, Any]) -> None:
    """The inputs, checked before anything starts: the replay file (the repo's sample when
    none is named) and the model. Raises SettingsError (exit 2)."""
    if settings["source"] == "replay":
        if settings["replay"] is None:
            if not SAMPLE_REPLAY.is_file():
                raise SettingsError("--source replay needs --replay FILE")
            settings["replay"] = SAMPLE_REPLAY  # the sample of this repo
        from producers.replay import ReplayError, check_file

        if not settings["replay"].is_file():
            raise SettingsError(f"--replay: {settings['replay']}: no such file")
        try:
            check_file(settings["replay"])
        except ReplayError as err:
            raise SettingsError(f"--replay: {err}") from None
    if settings["model"]:
        from stream.settings import OPTIONS as CLASSIFIER_OPTIONS

        resolve({"model": settings["model"]}, [o for o in CLASSIFIER_OPTIONS if o.name == "model"])
    first, second = settings["classifier_metrics_port"], settings["producer_metrics_port"]
    if first and first == second:
        raise SettingsError("--classifier-metrics-port and --producer-metrics-port must differ")


def check_ports(settings: Mapping[str, Any]) -> None:
    """The metrics ports are free; PortInUseError (exit 4) naming who holds one otherwise."""
    ports = (
        (settings["classifier_metrics_port"], "classifier metrics", "--classifier-metrics-port"),
        (settings["producer_metrics_port"], "producer metrics", "--producer-metrics-port"),
    )
    for number, what, flag in ports:
        check_port_free("127.0.0.1", number, what, flag)


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


def find_previous_run(record_path: Path, settings: Mapping[str, Any]) -> dict[str, int]:
    """Processes of an earlier `stocksent run` still alive, by role: from its run record, and
    stocksent processes holding this run's metrics ports (left by runs without a record)."""
    found: dict[str, int] = {}
    with contextlib.suppress(OSError, ValueError, TypeError, AttributeError):
        record = orjson.loads(record_path.read_bytes())
        for name, pid in {"run": record["run_pid"], **record["children"]}.items():
            if int(pid) != os.getpid() and _alive_stocksent(int(pid)):
                found[name] = int(pid)
    for number, name in (
        (settings["classifier_metrics_port"], "classifier"),
        (settings["producer_metrics_port"], "producer"),
    ):
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


def run(settings: dict[str, Any], screen: Screen | None = None) -> int:
    """Runs the pipeline until asked to stop; returns the exit code."""
    screen = screen or Screen()
    check_inputs(settings)
    model_line = prepare_model_store(settings)
    log_root = settings["log_dir"] or cache_root() / "run"
    log_root.mkdir(parents=True, exist_ok=True)
    record_path = log_root / RUN_RECORD
    previous = find_previous_run(record_path, settings)
    if previous and not settings["stop_previous"]:
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
    check_ports(settings)  # after a previous run's services let go of theirs
    if settings["bootstrap_servers"]:
        check_kafka(
            {"bootstrap_servers": settings["bootstrap_servers"]}, settings["connect_timeout"]
        )

    stop_asked = False
    starting = True

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stop_asked
        stop_asked = True
        if starting:  # nothing to drain yet: leave the start-up at once
            raise StopAskedError(signal.Signals(signum).name)

    handlers = {
        sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    }
    log_dir = run_log_dir(log_root)
    broker: LocalKafka | None = None
    children: list[Child] = []
    consumers: list[Any] = []
    code = ExitCode.OK
    try:
        bootstrap = settings["bootstrap_servers"]
        if not bootstrap:
            local = LocalKafka(port=settings["kafka_port"])
            screen.say(f"starting Kafka on {local.bootstrap} (log {local.log_file}) ...")
            started = local.up(port_flag="--kafka-port")
            broker = local if started else None  # a broker someone else started is not ours to stop
            screen.say(
                f"Kafka {local.kafka_version()} {'started' if started else 'already running, reused'}"
            )
            bootstrap = local.bootstrap
        from stocksent.topics_cli import create_topics

        created = create_topics({"bootstrap_servers": bootstrap}, settings["partitions"])
        screen.say(f"topics ready (created: {', '.join(created) or 'none, all existed'})")
        if screen.closed:  # `| head` already has what it wanted: start nothing more
            raise StopAskedError
        classifier = _spawn("classifier", classifier_argv(settings, bootstrap), log_dir)
        children.append(classifier)
        _write_record(record_path, children, broker, log_dir)
        screen.say(model_line)
        screen.say(f"loading the model (logs: {log_dir}) ...")
        cport = settings["classifier_metrics_port"]
        if cport:
            _wait_ready(
                f"http://127.0.0.1:{cport}/readyz",
                classifier,
                READY_TIMEOUT_S,
                lambda: stop_asked or screen.closed,
            )
        # the live view starts at this moment's records, however late its own start-up ends
        since_ms = int(time.time() * 1000)
        children.append(_spawn("producer", producer_argv(settings, bootstrap), log_dir))
        _write_record(record_path, children, broker, log_dir)
        from stream.tail import open_consumer

        connection = {"bootstrap_servers": bootstrap}
        consumers = [
            open_consumer(connection, topics.OUTPUT_TOPIC, since_ms),
            open_consumer(connection, topics.DLQ_TOPIC, since_ms),
        ]
        if cport:
            screen.say(
                f"metrics: classifier http://127.0.0.1:{cport}/metrics, producer "
                f"http://127.0.0.1:{settings['producer_metrics_port']}/metrics"
            )
        screen.say(f"source: {_source_text(settings)}. Ctrl-C stops everything.\n")
        starting = False
        if stop_asked or screen.closed:
            raise StopAskedError
        code = _view(settings, screen, children, consumers, lambda: stop_asked)
    except StopAskedError:
        pass
    except (CommandError, LocalKafkaError) as err:
        # one line for the user; the child's own log has the rest
        screen.warn(f"stocksent run: error: {str(err).strip().splitlines()[0]}")
        code = err.code if isinstance(err, CommandError) else ExitCode.FAILED
    finally:
        starting = False
        for consumer in consumers:
            with contextlib.suppress(Exception):
                consumer.close()
        screen.say("\nstopping ...")
        # producer first so nothing new arrives, then the classifier drains and commits
        for name in ("producer", "classifier"):
            for child in children:
                if child.name == name:
                    returned = _stop(child)
                    if returned not in (0, None, -signal.SIGTERM) and code == 0:
                        screen.warn(f"{name} stopped with code {returned} (log {child.log_path})")
        if broker is not None:
            broker.down()
            screen.say(f"Kafka stopped (data kept in {broker.data_dir})")
        record_path.unlink(missing_ok=True)
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        screen.say(f"all stopped (exit {int(code)})")
    return int(code)


def _source_text(settings: Mapping[str, Any]) -> str:
    if settings["source"] == "replay":
        return f"replay of {settings['replay']} at {settings['rate']:g} msgs/s"
    if settings["source"] == "live":
        return f"live StockTwits API, symbols {','.join(settings['symbols'])}"
    return f"synthetic messages at {settings['rate']:g} msgs/s"


def _write_record(path: Path, children: list[Child], broker: LocalKafka | None, logs: Path) -> None:
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
    settings: Mapping[str, Any],
    screen: Screen,
    children: list[Child],
    consumers: list[Any],
    stopping: Any,
) -> ExitCode:
    """Shows rows and the status line until a stop; the exit code."""
    from stream.tail import (
        DLQ_HEADER,
        HEADER,
        format_dlq_row,
        format_row,
        paint,
        poll_in_time_order,
    )

    status = Status(settings["classifier_metrics_port"], settings["producer_metrics_port"])
    limiter = RowLimiter(settings["rows_per_second"])
    width = 70
    screen.say(paint(HEADER, "dim", screen.colour))
    deadline = time.monotonic() + settings["duration"] if settings["duration"] else None
    next_status = time.monotonic() + STATUS_EVERY_S
    producer_done: int | None = None
    all_done_said = False
    output, dead_letters = consumers
    dlq_header_shown = False
    last_totals: tuple[float, ...] = ()
    repeat_at = 0.0
    while not stopping() and not screen.closed:
        if deadline is not None and time.monotonic() >= deadline:
            break
        for record in poll_in_time_order(output, timeout_ms=150):
            if limiter.allow():
                try:
                    row = format_row(orjson.loads(record.value), width, screen.colour)
                except (orjson.JSONDecodeError, TypeError, ValueError, AttributeError):
                    row = f"(undecodable record at offset {record.offset})"
                screen.say(row)
        for record in poll_in_time_order(dead_letters, timeout_ms=50):
            if True:  # dead letters are rare and each one matters: never hidden
                if not dlq_header_shown:
                    screen.say(paint("dead letter: " + DLQ_HEADER, "dim", screen.colour))
                    dlq_header_shown = True
                screen.say(
                    "dead letter: "
                    + format_dlq_row(record.value, record.headers, 60, screen.colour)
                )
        for child in children:
            exited = child.process.poll()
            if exited is None:
                continue
            if child.name == "producer" and exited == 0:
                if producer_done is None:
                    producer_done = _published_count(child)
                    screen.say(
                        paint(
                            f"── producer finished: {producer_done:,} messages published",
                            "dim",
                            screen.colour,
                        )
                    )
                continue
            error = _last_error(child)
            screen.warn(
                f"stocksent run: error: {child.name} exited with code {exited}: "
                f"{error or 'see its log'} ({child.log_path})"
            )
            return ExitCode.FAILED
        if time.monotonic() >= next_status:
            next_status = time.monotonic() + STATUS_EVERY_S
            status.refresh()
            if status.api_problems:
                status.api_detail = _last_warning(children)
            if producer_done is not None:
                status.published = max(status.published, producer_done)
            # an idle pipeline repeats its status once a minute, not every few seconds
            if status.totals() != last_totals or time.monotonic() >= repeat_at:
                screen.say(paint(status.line(limiter.hidden), "dim", screen.colour))
                last_totals = status.totals()
                repeat_at = time.monotonic() + STATUS_REPEAT_S
            if producer_done is not None and not all_done_said and status.consumed >= producer_done:
                dlq = sum(status.dead_letters.values())
                screen.say(
                    f"── all {producer_done:,} messages processed: {int(status.labeled):,} "
                    f"labeled, {dlq:,} dead-lettered (see them: stocksent tail --dlq "
                    "--from-beginning). Ctrl-C stops everything."
                )
                all_done_said = True
    return ExitCode.OK


def _last_warning(children: list[Child]) -> str:
    """The producer's last logged warning, without its time and logger (for the status)."""
    for child in children:
        if child.name == "producer":
            for line in reversed(_log_tail(child, 40).splitlines()):
                if " WARNING " in line or " ERROR " in line:
                    message = line.split(": ", 1)[-1]
                    return message if len(message) <= 80 else message[:79] + "…"
    return ""


def _published_count(child: Child) -> int:
    """How many messages a finished producer published, from its last summary line."""
    if child.log_path is None:
        return 0
    try:
        found = PUBLISHED_LINE.findall(child.log_path.read_bytes())
    except OSError:
        return 0
    return int(found[-1][1]) if found else 0


def main(argv: list[str], prog: str = "stocksent run") -> int:
    """Entry point of `stocksent run`."""
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_options(parser, OPTIONS)
    try:
        settings = resolve(parser.parse_args(argv), OPTIONS)
    except SettingsError as err:
        raise BadInputError(str(err)) from None
    return run(settings)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
