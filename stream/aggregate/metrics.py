"""The aggregator's Prometheus metrics: one closed list of names, on a registry the caller
owns. Label sets are bounded: `window` is a view's name, `reason` a closed list, `symbol`
the watchlist plus this instance's top symbols by volume (`SymbolGauges`)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable, Sequence
from typing import Any, Final, Literal

from prometheus_client import CollectorRegistry, Counter, Gauge

from stream.aggregate.labeled_input import AggregatorDeadLetterReason

PREFIX: Final = "stocksent_aggregator_"

METRIC_NAMES: Final[dict[str, str]] = {
    "messages_consumed_total": "labeled records read by the re-key stage",
    "messages_without_symbols_total": "labeled records without symbols: they count in no "
    "window but move their partition's watermark",
    "windows_emitted_total": "window records published, by view and final or early",
    "late_records_total": "records later than the grace for a view, which they do not count in",
    "stale_partials_total": "records in re-sent partials for windows already final "
    "(at-least-once only, after a re-key stage restart): not counted twice",
    "dead_letters_total": "labeled records sent to the aggregator's DLQ, by reason",
    "open_windows": "windows held open by this instance (state size), by view",
    "watermark_lag_seconds": "wall clock minus the lowest watermark of this instance's input "
    "partitions",
    "symbol_bullish_share": "bullish share of the last final window, by symbol and view",
    "symbol_messages": "messages of the last final window, by symbol and view",
    "errors_total": "errors by stage (the service carried on or retried)",
}

METRIC_LABELS: Final[dict[str, tuple[str, ...]]] = {
    "windows_emitted_total": ("window", "final"),
    "late_records_total": ("window",),
    "dead_letters_total": ("reason",),
    "open_windows": ("window",),
    "symbol_bullish_share": ("symbol", "window"),
    "symbol_messages": ("symbol", "window"),
    "errors_total": ("stage",),
}

ErrorStage = Literal["rekey", "window", "restore"]
ERROR_STAGES: Final[tuple[ErrorStage, ...]] = ("rekey", "window", "restore")


class AggregatorMetrics:
    """All aggregator metrics, on one registry."""

    def __init__(
        self, registry: CollectorRegistry, views: Sequence[str], watchlist: Iterable[str], top: int
    ) -> None:
        def doc(name: str) -> tuple[str, str, tuple[str, ...]]:
            return PREFIX + name, METRIC_NAMES[name], METRIC_LABELS.get(name, ())

        self.consumed = Counter(*doc("messages_consumed_total"), registry=registry)
        self.without_symbols = Counter(*doc("messages_without_symbols_total"), registry=registry)
        self.emitted = Counter(*doc("windows_emitted_total"), registry=registry)
        self.late = Counter(*doc("late_records_total"), registry=registry)
        self.stale = Counter(*doc("stale_partials_total"), registry=registry)
        self.dead_letters = Counter(*doc("dead_letters_total"), registry=registry)
        self.open_windows = Gauge(*doc("open_windows"), registry=registry)
        self.watermark_lag = Gauge(*doc("watermark_lag_seconds"), registry=registry)
        self.errors = Counter(*doc("errors_total"), registry=registry)
        share = Gauge(*doc("symbol_bullish_share"), registry=registry)
        messages = Gauge(*doc("symbol_messages"), registry=registry)
        self.symbols = SymbolGauges(share, messages, frozenset(watchlist), top)
        for view in views:
            self.late.labels(view)
            self.open_windows.labels(view)
            for final in ("true", "false"):
                self.emitted.labels(view, final)
        for reason in AggregatorDeadLetterReason:
            self.dead_letters.labels(reason.value)
        for stage in ERROR_STAGES:
            self.errors.labels(stage)

    def error(self, stage: ErrorStage) -> None:
        """Counts one error at a stage."""
        self.errors.labels(stage).inc()


class SymbolGauges:
    """`symbol_bullish_share` and `symbol_messages` of the latest final window of each view,
    for the watchlist plus the top symbols by volume in it; symbols that drop out lose their
    labels."""

    def __init__(self, share: Gauge, messages: Gauge, watchlist: frozenset[str], top: int) -> None:
        self._share, self._messages = share, messages
        self._watchlist, self._top = watchlist, top
        self._latest: dict[str, int] = {}  # view -> start (ms) of its latest final window
        self._figures: dict[str, dict[str, tuple[int, float]]] = {}  # view -> symbol -> figures
        self._shown: dict[str, set[str]] = {}
        self._lock = threading.Lock()

    def final(self, view: str, start_ms: int, symbol: str, count: int, share: float) -> None:
        """Notes one final window (cheap: the labels change in `publish`)."""
        with self._lock:
            latest = self._latest.get(view)
            if latest is None or start_ms > latest:
                self._latest[view] = start_ms
                self._figures[view] = {}
            elif start_ms < latest:
                return
            self._figures[view][symbol] = (count, share)

    def publish(self) -> None:
        """Sets the gauges from the latest final windows; removes labels that dropped out."""
        with self._lock:
            for view, figures in self._figures.items():
                top = sorted(figures, key=lambda s: (-figures[s][0], s))[: self._top]
                shown = set(top) | (self._watchlist & figures.keys())
                for symbol in self._shown.get(view, set()) - shown:
                    self._remove(symbol, view)
                for symbol in shown:
                    count, share = figures[symbol]
                    self._messages.labels(symbol, view).set(count)
                    self._share.labels(symbol, view).set(share)
                self._shown[view] = shown

    def _remove(self, *labels: Any) -> None:
        for gauge in (self._share, self._messages):
            with contextlib.suppress(KeyError):
                gauge.remove(*labels)
