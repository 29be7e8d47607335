"""`stocksent produce`: feed the input topic from the live API, a replay file or synthetic text.

Exactly one source runs: `--replay FILE`, `--synthetic`, or (default) the live poller over
`--symbols`. Every option is also an environment variable `STOCKSENT_<NAME>` (the flag wins).
SIGINT/SIGTERM stop the source, flush every queued record and exit 0.

Exit codes: 0 done, 1 runtime failure (Kafka did not acknowledge, unusable state file,
no symbol left), 2 bad configuration.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from common.kafka_settings import COMPRESSION_OPTION, CONNECTION_OPTIONS
from common.options import (
    LOG_LEVEL_OPTION,
    Option,
    Secret,
    SettingsError,
    add_options,
    boolean,
    comma_list,
    describe,
    existing_file,
    non_empty_text,
    non_negative_int,
    optional_path,
    port,
    positive_float,
    positive_int,
    resolve,
    text,
)
from common.preflight import check_kafka, check_port_free
from common.topics import INPUT_TOPIC
from producers.backoff import Backoff, CircuitBreaker
from producers.budget import RequestBudget
from producers.feed import feed
from producers.metrics import (
    DEFAULT_METRICS_HOST,
    DEFAULT_METRICS_PORT,
    ProducerMetrics,
    Source,
    serve,
)
from producers.poller import LivePoller
from producers.publisher import KafkaPublisher, PublishError
from producers.replay import ReplayError, check_file, read_messages
from producers.state import FileStateStore, StateError, default_state_path
from producers.stocktwits_api import DEFAULT_API_BASE_URL, DEFAULT_USER_AGENT, StockTwitsClient
from producers.synthetic import SyntheticMessages

log = logging.getLogger("producers")


def non_negative_float(value: str) -> float:
    """A number >= 0."""
    number = float(value)
    if not number >= 0:
        raise ValueError("must be >= 0")
    return number


def symbol_list(value: str) -> tuple[str, ...]:
    """Comma-separated ticker symbols, upper-cased, duplicates dropped."""
    symbols = tuple(dict.fromkeys(s.upper().lstrip("$") for s in comma_list(value)))
    for symbol in symbols:
        if not symbol.replace(".", "").replace("-", "").isalnum():
            raise ValueError(f"{symbol!r} is not a ticker symbol")
    return symbols


PRODUCER_OPTIONS: tuple[Option, ...] = (
    *CONNECTION_OPTIONS,
    Option("topic", non_empty_text, INPUT_TOPIC, "Kafka topic to publish messages to"),
    COMPRESSION_OPTION,
    Option("symbols", symbol_list, (), "watchlist to poll, e.g. SPY,AAPL (live source)"),
    Option("api_base_url", non_empty_text, DEFAULT_API_BASE_URL, "StockTwits API v2 base URL"),
    Option(
        "stocktwits_token", text, "", "StockTwits access token (sent, never logged)", secret=True
    ),
    Option("user_agent", non_empty_text, DEFAULT_USER_AGENT, "User-Agent of API requests"),
    Option(
        "requests_per_hour",
        positive_int,
        200,
        "API request budget shared by all symbols, evenly spaced",
    ),
    Option(
        "backfill_pages",
        positive_int,
        1,
        "pages (30 messages each) fetched on the first poll of a symbol without history",
    ),
    Option("request_timeout", positive_float, 10.0, "seconds before an API request times out"),
    Option(
        "circuit_cooldown",
        positive_float,
        900.0,
        "seconds requests pause after a block page (doubles while still blocked)",
    ),
    Option(
        "state",
        optional_path,
        None,
        "JSON file of per-symbol high-water ids (default: producer-state.json in "
        "$STOCKSENT_STATE_DIR, else ~/.local/state/stocksent)",
    ),
    Option("once", boolean, False, "poll every symbol once (paging back), then exit", is_flag=True),
    Option("replay", existing_file, None, "replay a file: API response .json, .jsonl or .csv"),
    Option("synthetic", boolean, False, "publish generated messages", is_flag=True),
    Option("rate", non_negative_float, 10.0, "replay/synthetic messages per second (0 = max)"),
    Option(
        "loop",
        boolean,
        False,
        "replay the file again and again (synthetic is endless anyway unless --count)",
        is_flag=True,
    ),
    Option("count", non_negative_int, None, "stop after this many replay/synthetic messages"),
    Option("seed", non_negative_int, None, "random seed of the synthetic texts"),
    Option("metrics_host", non_empty_text, DEFAULT_METRICS_HOST, "address of /metrics"),
    Option("metrics_port", port, DEFAULT_METRICS_PORT, "port of /metrics (0 = disabled)"),
    LOG_LEVEL_OPTION,
)


def build_parser(prog: str) -> argparse.ArgumentParser:
    """The argument parser of `stocksent produce`."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Feed StockTwits messages (live API, replay, synthetic) into Kafka.",
    )
    add_options(parser, PRODUCER_OPTIONS)
    return parser


def main(argv: list[str], prog: str = "stocksent produce") -> int:
    """Entry point: parse, print the configuration, run the chosen source; returns the exit code."""
    args = build_parser(prog).parse_args(argv)
    try:
        settings = resolve(args, PRODUCER_OPTIONS)
        _check_combination(settings)
    except SettingsError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2
    _configure_logging(settings["log_level"])

    # before anything starts: a taken port or an absent Kafka is one line in seconds
    check_port_free(settings["metrics_host"], settings["metrics_port"], "metrics", "--metrics-port")
    check_kafka(settings, settings["connect_timeout"])
    print(
        f"{prog}: effective configuration\n{describe(settings, PRODUCER_OPTIONS)}", file=sys.stderr
    )

    stop = threading.Event()
    metrics = ProducerMetrics(watchlist=settings["symbols"])
    with _stop_on_signals(stop):
        server = serve(metrics, settings["metrics_host"], settings["metrics_port"])
        try:
            return run(settings, metrics, stop)
        finally:
            if server is not None:
                server.shutdown()  # type: ignore[attr-defined]


def run(settings: dict[str, Any], metrics: ProducerMetrics, stop: threading.Event) -> int:
    """Runs the configured source until done or `stop`; flushes and closes the publisher."""
    try:
        publisher = KafkaPublisher(settings, settings["topic"], metrics)
    except Exception as err:  # kafka-python raises several types when no broker answers
        log.error("cannot connect to Kafka at %s: %s", settings["bootstrap_servers"], err)
        return 1
    try:
        if settings["replay"] is not None:
            _run_replay(settings, publisher, stop)
        elif settings["synthetic"]:
            messages = SyntheticMessages(seed=settings["seed"])
            feed(
                messages,
                publisher,
                Source.SYNTHETIC,
                rate=settings["rate"],
                count=settings["count"],
                stop=stop,
            )
        else:
            return _run_live(settings, publisher, metrics, stop)
        return 0
    except (PublishError, ReplayError, StateError) as err:
        log.error("%s", err)
        return 1
    finally:
        try:
            publisher.close()
        except PublishError as err:
            log.error("%s", err)


def _run_replay(settings: dict[str, Any], publisher: KafkaPublisher, stop: threading.Event) -> None:
    path: Path = settings["replay"]
    remaining: int | None = settings["count"]
    while not stop.is_set():
        sent = feed(
            read_messages(path),
            publisher,
            Source.REPLAY,
            rate=settings["rate"],
            count=remaining,
            stop=stop,
        )
        if remaining is not None:
            remaining -= sent
        if not settings["loop"] or sent == 0 or remaining == 0:
            return


def _run_live(
    settings: dict[str, Any],
    publisher: KafkaPublisher,
    metrics: ProducerMetrics,
    stop: threading.Event,
) -> int:
    token = settings["stocktwits_token"]
    client = StockTwitsClient(
        settings["api_base_url"],
        token=token.reveal() if isinstance(token, Secret) else None,
        user_agent=settings["user_agent"],
        timeout_s=settings["request_timeout"],
    )
    poller = LivePoller(
        client,
        publisher,
        FileStateStore(settings["state"]),
        metrics,
        settings["symbols"],
        budget=RequestBudget(settings["requests_per_hour"]),
        backoff=Backoff(),
        breaker=CircuitBreaker(settings["circuit_cooldown"]),
        backfill_pages=settings["backfill_pages"],
        # --once must end: it does not sit out a block's cool-down.
        wait_for_circuit=not settings["once"],
        stop=stop,
    )
    if settings["once"]:
        results = poller.run_once()
        for result in results:
            log.info(
                "%s: %d page(s), %d fetched, %d published, %d duplicate(s)%s",
                result.symbol,
                result.pages,
                result.fetched,
                result.published,
                result.duplicates,
                "" if result.complete else f", incomplete ({result.failed_outcome})",
            )
    else:
        poller.run_forever()
    return 0 if poller.active_symbols() else 1


def _check_combination(settings: dict[str, Any]) -> None:
    if settings["replay"] is not None and settings["synthetic"]:
        raise SettingsError("--replay and --synthetic are two sources: choose one")
    if settings["replay"] is not None:
        try:
            check_file(settings["replay"])
        except ReplayError as err:
            raise SettingsError(f"--replay: {err}") from None
    live = settings["replay"] is None and not settings["synthetic"]
    if live and not settings["symbols"]:
        raise SettingsError("--symbols (STOCKSENT_SYMBOLS) is required for the live source")
    if live and settings["state"] is None:
        settings["state"] = default_state_path()
    if settings["once"] and not live:
        raise SettingsError("--once applies to the live source only")
    if settings["loop"] and live:
        raise SettingsError("--loop applies to --replay and --synthetic only")


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("producers").setLevel(level)
    # kafka-python is chatty at INFO; its warnings still show.
    logging.getLogger("kafka").setLevel(max(logging.WARNING, logging.getLevelName(level)))


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGINT/SIGTERM set `stop` (main thread only); previous handlers come back after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def _handle(signum: int, _frame: object) -> None:
        log.info("signal %s: stopping, flushing what is queued", signal.Signals(signum).name)
        stop.set()

    for sig in previous:
        signal.signal(sig, _handle)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
