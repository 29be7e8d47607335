"""`stocksent produce`: feed the input topic from the live API, a replay file or synthetic text.

Exactly one source runs: `--replay FILE`, `--synthetic`, or (default) the live poller over
`--symbols`. Every option is also an environment variable `STOCKSENT_<NAME>` (the flag wins).
SIGINT/SIGTERM stop the source, flush every queued record and exit 0.

Exit codes: 0 done, 1 runtime failure (Kafka did not acknowledge, unusable state file,
no symbol left), 2 bad configuration.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from common.kafka_settings import COMPRESSION_OPTION, KafkaConnection
from common.metrics_endpoint import METRICS_HOST, metrics_port_option
from common.options import (
    LOG_LEVEL_OPTION,
    Secret,
    SettingsError,
    boolean,
    describe,
    existing_file,
    group,
    non_empty_text,
    non_negative_float,
    non_negative_int,
    optional_path,
    parse_settings,
    positive_float,
    positive_int,
    setting,
    shared,
    text,
)
from common.preflight import check_kafka, check_port_free
from common.shared_options import INPUT_TOPIC_OPTION
from common.symbols import symbol_list
from producers.backoff import Backoff, CircuitBreaker
from producers.budget import RequestBudget
from producers.feed import feed
from producers.metrics import ProducerMetrics, Source, serve
from producers.poller import LivePoller
from producers.publisher import KafkaPublisher, PublishError
from producers.replay import ReplayError, check_file, read_messages
from producers.state import FileStateStore, StateError, default_state_path
from producers.stocktwits_api import DEFAULT_API_BASE_URL, DEFAULT_USER_AGENT, StockTwitsClient
from producers.synthetic import SyntheticMessages

log = logging.getLogger("producers")

DESCRIPTION = "Feed StockTwits messages (live API, replay, synthetic) into Kafka."


@dataclass(frozen=True)
class ProducerSettings:
    """Settings of `stocksent produce`; the combination of sources is checked on creation."""

    kafka: KafkaConnection = group(KafkaConnection)
    topic: str = shared(INPUT_TOPIC_OPTION, flag="topic")
    compression_type: str = shared(COMPRESSION_OPTION)
    symbols: tuple[str, ...] = setting(
        symbol_list, (), "symbols the live source polls, e.g. SPY,AAPL (required for it)"
    )
    api_base_url: str = setting(non_empty_text, DEFAULT_API_BASE_URL, "StockTwits API v2 base URL")
    stocktwits_token: Secret | str = setting(
        text, "", "StockTwits access token (sent, never logged)", secret=True
    )
    user_agent: str = setting(non_empty_text, DEFAULT_USER_AGENT, "User-Agent of API requests")
    requests_per_hour: int = setting(
        positive_int, 200, "API request budget shared by all symbols, evenly spaced"
    )
    backfill_pages: int = setting(
        positive_int,
        1,
        "pages (30 messages each) fetched on the first poll of a symbol without history",
    )
    request_timeout: float = setting(
        positive_float, 10.0, "seconds before an API request times out"
    )
    circuit_cooldown: float = setting(
        positive_float,
        900.0,
        "seconds requests pause after a block page (doubles while still blocked)",
    )
    state: Path | None = setting(
        optional_path,
        None,
        "JSON file of per-symbol high-water ids (default: producer-state.json in "
        "$STOCKSENT_STATE_DIR, else ~/.local/state/stocksent)",
    )
    once: bool = setting(
        boolean, False, "poll every symbol once (paging back), then exit", is_flag=True
    )
    replay: Path | None = setting(
        existing_file, None, "replay a file: API response .json, .jsonl or .csv"
    )
    synthetic: bool = setting(boolean, False, "publish generated messages", is_flag=True)
    rate: float = setting(
        non_negative_float, 10.0, "replay/synthetic messages per second (0 = max)"
    )
    loop: bool = setting(
        boolean,
        False,
        "replay the file again and again (synthetic is endless anyway unless --count)",
        is_flag=True,
    )
    count: int | None = setting(
        non_negative_int, None, "stop after this many replay/synthetic messages"
    )
    seed: int | None = setting(non_negative_int, None, "random seed of the synthetic texts")
    metrics_host: str = shared(METRICS_HOST)
    metrics_port: int = shared(metrics_port_option("producer"), flag="metrics_port")
    log_level: str = shared(LOG_LEVEL_OPTION)

    @property
    def live(self) -> bool:
        """True when the live API is the source (neither --replay nor --synthetic)."""
        return self.replay is None and not self.synthetic

    def __post_init__(self) -> None:
        if self.replay is not None and self.synthetic:
            raise SettingsError("--replay and --synthetic are two sources: choose one")
        if self.replay is not None:
            try:
                check_file(self.replay)
            except ReplayError as err:
                raise SettingsError(f"--replay: {err}") from None
        if self.live and not self.symbols:
            raise SettingsError("--symbols (STOCKSENT_SYMBOLS) is required for the live source")
        if self.live and self.state is None:
            object.__setattr__(self, "state", default_state_path())
        if self.once and not self.live:
            raise SettingsError("--once applies to the live source only")
        if self.loop and self.live:
            raise SettingsError("--loop applies to --replay and --synthetic only")


def main(argv: list[str], prog: str = "stocksent produce") -> int:
    """Entry point: parse, print the configuration, run the chosen source; returns the exit code."""
    # bad settings raise SettingsError: stocksent.cli prints its one line, exit 2
    settings = parse_settings(ProducerSettings, argv, prog, DESCRIPTION)
    _configure_logging(settings.log_level)

    # before anything starts: a taken port or an absent Kafka is one line in seconds
    check_port_free(settings.metrics_host, settings.metrics_port, "metrics", "--metrics-port")
    check_kafka(settings.kafka)
    print(f"{prog}: effective configuration\n{describe(settings)}", file=sys.stderr)

    stop = threading.Event()
    metrics = ProducerMetrics(watchlist=settings.symbols)
    with _stop_on_signals(stop):
        server = serve(metrics, settings.metrics_host, settings.metrics_port)
        try:
            return run(settings, metrics, stop)
        finally:
            if server is not None:
                server.shutdown()  # type: ignore[attr-defined]


def run(settings: ProducerSettings, metrics: ProducerMetrics, stop: threading.Event) -> int:
    """Runs the configured source until done or `stop`; flushes and closes the publisher."""
    try:
        publisher = KafkaPublisher(
            settings.kafka, settings.topic, metrics, settings.compression_type
        )
    except Exception as err:  # kafka-python raises several types when no broker answers
        log.error("cannot connect to Kafka at %s: %s", settings.kafka.bootstrap_servers, err)
        return 1
    try:
        if settings.replay is not None:
            _run_replay(settings, settings.replay, publisher, stop)
        elif settings.synthetic:
            messages = SyntheticMessages(seed=settings.seed)
            feed(
                messages,
                publisher,
                Source.SYNTHETIC,
                rate=settings.rate,
                count=settings.count,
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


def _run_replay(
    settings: ProducerSettings, path: Path, publisher: KafkaPublisher, stop: threading.Event
) -> None:
    remaining = settings.count
    while not stop.is_set():
        sent = feed(
            read_messages(path),
            publisher,
            Source.REPLAY,
            rate=settings.rate,
            count=remaining,
            stop=stop,
        )
        if remaining is not None:
            remaining -= sent
        if not settings.loop or sent == 0 or remaining == 0:
            return


def _run_live(
    settings: ProducerSettings,
    publisher: KafkaPublisher,
    metrics: ProducerMetrics,
    stop: threading.Event,
) -> int:
    token = settings.stocktwits_token
    client = StockTwitsClient(
        settings.api_base_url,
        token=token.reveal() if isinstance(token, Secret) else None,
        user_agent=settings.user_agent,
        timeout_s=settings.request_timeout,
    )
    poller = LivePoller(
        client,
        publisher,
        FileStateStore(settings.state or default_state_path()),
        metrics,
        settings.symbols,
        budget=RequestBudget(settings.requests_per_hour),
        backoff=Backoff(),
        breaker=CircuitBreaker(settings.circuit_cooldown),
        backfill_pages=settings.backfill_pages,
        # --once must end: it does not sit out a block's cool-down.
        wait_for_circuit=not settings.once,
        stop=stop,
    )
    if settings.once:
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
