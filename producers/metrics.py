"""The producer's Prometheus metrics: one closed list, names as in docs/CONTRACTS.md.

Every metric lives in the registry passed in (never the global one), so tests build a fresh
`CollectorRegistry()` and read it with `registry.get_sample_value(...)`. Label values are
bounded: outcomes come from `RequestOutcome`, sources from `Source`, and symbols only from
the configured watchlist.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterable
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from producers.stocktwits_api import RequestOutcome

log = logging.getLogger(__name__)

DEFAULT_METRICS_PORT: Final = 9301
DEFAULT_METRICS_HOST: Final = "127.0.0.1"


class Source(enum.Enum):
    """Where a published message came from; the `source` header and metrics label."""

    LIVE = "live"
    REPLAY = "replay"
    SYNTHETIC = "synthetic"


# The closed list of metric names (docs/CONTRACTS.md): the only place they are spelled.
REQUESTS_TOTAL: Final = "stocksent_producer_requests_total"  # API requests by outcome
REQUEST_SECONDS: Final = "stocksent_producer_request_seconds"  # API request duration
MESSAGES_FETCHED_TOTAL: Final = "stocksent_producer_messages_fetched_total"  # from the API
MESSAGES_PUBLISHED_TOTAL: Final = "stocksent_producer_messages_published_total"  # acked, by source
DUPLICATES_SKIPPED_TOTAL: Final = "stocksent_producer_duplicates_skipped_total"  # seen id
REQUEST_BUDGET_REMAINING: Final = "stocksent_producer_request_budget_remaining"  # this hour
HIGH_WATER_LAG_SECONDS: Final = "stocksent_producer_high_water_lag_seconds"  # now - newest
CIRCUIT_OPEN: Final = "stocksent_producer_circuit_open"  # 1 while blocked

METRIC_NAMES: Final = (
    REQUESTS_TOTAL,
    REQUEST_SECONDS,
    MESSAGES_FETCHED_TOTAL,
    MESSAGES_PUBLISHED_TOTAL,
    DUPLICATES_SKIPPED_TOTAL,
    REQUEST_BUDGET_REMAINING,
    HIGH_WATER_LAG_SECONDS,
    CIRCUIT_OPEN,
)

# The labels of the labelled ones (the reference table reads them here too).
METRIC_LABELS: Final[dict[str, tuple[str, ...]]] = {
    REQUESTS_TOTAL: ("outcome",),
    MESSAGES_PUBLISHED_TOTAL: ("source",),
    HIGH_WATER_LAG_SECONDS: ("symbol",),
}


def _base(name: str) -> str:
    # prometheus_client appends `_total` to counters itself.
    return name.removesuffix("_total")


class ProducerMetrics:
    """All producer metrics, registered in `registry`."""

    def __init__(
        self, registry: CollectorRegistry | None = None, watchlist: Iterable[str] = ()
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.watchlist = frozenset(watchlist)
        r = self.registry
        self.requests = Counter(
            _base(REQUESTS_TOTAL),
            "StockTwits API requests by outcome",
            METRIC_LABELS[REQUESTS_TOTAL],
            registry=r,
        )
        self.request_seconds = Histogram(
            REQUEST_SECONDS,
            "StockTwits API request duration",
            buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
            registry=r,
        )
        self.messages_fetched = Counter(
            _base(MESSAGES_FETCHED_TOTAL), "Messages received from the API", registry=r
        )
        self.messages_published = Counter(
            _base(MESSAGES_PUBLISHED_TOTAL),
            "Messages acknowledged by Kafka, by source",
            METRIC_LABELS[MESSAGES_PUBLISHED_TOTAL],
            registry=r,
        )
        self.duplicates_skipped = Counter(
            _base(DUPLICATES_SKIPPED_TOTAL),
            "Messages not published again because their id was already published",
            registry=r,
        )
        self.budget_remaining = Gauge(
            REQUEST_BUDGET_REMAINING, "API requests left in the current hour", registry=r
        )
        self.high_water_lag = Gauge(
            HIGH_WATER_LAG_SECONDS,
            "Seconds between now and the newest message published for the symbol",
            METRIC_LABELS[HIGH_WATER_LAG_SECONDS],
            registry=r,
        )
        self.circuit_open = Gauge(
            CIRCUIT_OPEN, "1 while the API blocks us and requests are paused", registry=r
        )
        # Zero every known series so dashboards see them before the first event.
        for outcome in RequestOutcome:
            self.requests.labels(outcome=outcome.value)
        for source in Source:
            self.messages_published.labels(source=source.value)

    def count_request(self, outcome: RequestOutcome, seconds: float) -> None:
        """One API request and its duration."""
        self.requests.labels(outcome=outcome.value).inc()
        self.request_seconds.observe(seconds)

    def set_high_water_lag(self, symbol: str, seconds: float) -> None:
        """Lag of one symbol; ignored for symbols outside the watchlist (bounded labels)."""
        if symbol in self.watchlist:
            self.high_water_lag.labels(symbol=symbol).set(max(0.0, seconds))


def serve(metrics: ProducerMetrics, host: str, port: int) -> object | None:
    """Starts the /metrics HTTP server unless `port` is 0; returns the server to shut down."""
    if port == 0:
        return None
    server, _thread = start_http_server(port, addr=host, registry=metrics.registry)
    log.info("metrics on http://%s:%d/metrics", host, port)
    return server
