"""The classifier's Prometheus metrics: one closed list of names (docs/CONTRACTS.md), each
registered on a registry the caller owns, so tests never share the global one."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from typing import Final, Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from common.symbols import normalise_symbol
from stream.decode import DeadLetterReason

PREFIX: Final = "stocksent_classifier_"

# The closed list: name -> what it counts. A name used anywhere else must be one of these.
METRIC_NAMES: Final[dict[str, str]] = {
    "messages_consumed_total": "input records processed (each ends as one output or DLQ record, or a skip)",
    "records_published_total": "labeled records published to the output topic",
    "dead_letters_total": "input records sent to the dead-letter topic, by reason",
    "records_skipped_total": "input records neither labeled nor dead-lettered, by reason: the "
    "broker refused even a minimal DLQ copy (each is logged with its coordinates)",
    "errors_total": "errors by stage of the loop (the service carried on or retried)",
    "batch_size": "messages per processed batch",
    "scoring_wait_seconds": "time a batch waited for the model (busy with the one before)",
    "inference_seconds": "time of one batched model call",
    "publish_seconds": "time to publish a scored batch: sends, acknowledgements, offset commit",
    "end_to_end_seconds": "input record timestamp (else created_at) to output acknowledged",
    "consumer_lag": "records behind the partition's high watermark after the last batch",
    "predictions_total": "predictions by label",
    "symbol_predictions_total": "predictions by symbol (watchlist, else `other`) and label",
    "author_tags_total": "model label vs the author's own tag, where the author tagged, "
    "by the model version that labeled",
    "model_info": "the model version serving now (1; only one version at a time)",
    "model_reloads_total": "attempts to take over a new CURRENT of the model store, by outcome",
    "model_bullish_prior_ratio": "share of bullish tags in the data the serving model learned "
    "from (its manifest; absent when it does not say)",
}

# The labels of the labelled ones (the reference table reads them here too).
METRIC_LABELS: Final[dict[str, tuple[str, ...]]] = {
    "dead_letters_total": ("reason",),
    "records_skipped_total": ("reason",),
    "errors_total": ("stage",),
    "consumer_lag": ("topic", "partition"),
    "predictions_total": ("label",),
    "symbol_predictions_total": ("symbol", "label"),
    "author_tags_total": ("agreement", "model_version"),
    "model_info": ("version",),
    "model_reloads_total": ("outcome",),
}

ErrorStage = Literal["consume", "predict", "produce", "commit", "transaction"]
ERROR_STAGES: Final[tuple[ErrorStage, ...]] = (
    "consume",
    "predict",
    "produce",
    "commit",
    "transaction",
)
OTHER_SYMBOL: Final = "other"
AGREEMENTS: Final = ("agree", "disagree")

# What became of a version the model store's CURRENT named (stream/model_follower.py):
# loaded: verified and handed to the loop, which serves it from its next batch;
# failed_store: CURRENT unreadable, or it names a version the store does not hold;
# failed_load: not a loadable SavedModel with the serving signature, or its manifest names
# another version than its directory; failed_smoke_check: loads, but does not reproduce the
# sample probabilities its manifest records (model/smoke.py).
ReloadOutcome = Literal["loaded", "failed_store", "failed_load", "failed_smoke_check"]
RELOAD_OUTCOMES: Final[tuple[ReloadOutcome, ...]] = (
    "loaded",
    "failed_store",
    "failed_load",
    "failed_smoke_check",
)

BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048)
BATCH_STAGE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
END_TO_END_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class ClassifierMetrics:
    """All classifier metrics, on one registry."""

    def __init__(self, registry: CollectorRegistry, watchlist: Iterable[str] = ()) -> None:
        self.registry = registry
        self.watchlist = frozenset(watchlist)

        def doc(name: str) -> tuple[str, str, tuple[str, ...]]:
            return PREFIX + name, METRIC_NAMES[name], METRIC_LABELS.get(name, ())

        self.consumed = Counter(*doc("messages_consumed_total"), registry=registry)
        self.published = Counter(*doc("records_published_total"), registry=registry)
        self.dead_letters = Counter(*doc("dead_letters_total"), registry=registry)
        self.skipped = Counter(*doc("records_skipped_total"), registry=registry)
        self.errors = Counter(*doc("errors_total"), registry=registry)
        self.batch_size = Histogram(
            *doc("batch_size"), buckets=BATCH_SIZE_BUCKETS, registry=registry
        )
        self.inference_seconds = Histogram(
            *doc("inference_seconds"), buckets=BATCH_STAGE_BUCKETS, registry=registry
        )
        self.scoring_wait_seconds = Histogram(
            *doc("scoring_wait_seconds"), buckets=BATCH_STAGE_BUCKETS, registry=registry
        )
        self.publish_seconds = Histogram(
            *doc("publish_seconds"), buckets=BATCH_STAGE_BUCKETS, registry=registry
        )
        self.end_to_end_seconds = Histogram(
            *doc("end_to_end_seconds"), buckets=END_TO_END_BUCKETS, registry=registry
        )
        self.consumer_lag = Gauge(*doc("consumer_lag"), registry=registry)
        self.predictions = Counter(*doc("predictions_total"), registry=registry)
        self.symbol_predictions = Counter(*doc("symbol_predictions_total"), registry=registry)
        self.author_tags = Counter(*doc("author_tags_total"), registry=registry)
        self.model_info = Gauge(*doc("model_info"), registry=registry)
        self.model_reloads = Counter(*doc("model_reloads_total"), registry=registry)
        self.model_bullish_prior = Gauge(*doc("model_bullish_prior_ratio"), registry=registry)
        # Label sets are bounded and known: expose them at 0 from the start, so rates and
        # alerts work before the first event of each kind.
        for reason in DeadLetterReason:
            self.dead_letters.labels(reason.value)
            self.skipped.labels(reason.value)
        for stage in ERROR_STAGES:
            self.errors.labels(stage)
        for label in ("bullish", "bearish"):
            self.predictions.labels(label)
        for outcome in RELOAD_OUTCOMES:
            self.model_reloads.labels(outcome)

    def symbol_label(self, symbol: str) -> str:
        """The `symbol` label value: the symbol (normalised) when watched, else `other`
        (bounded)."""
        symbol = normalise_symbol(symbol)
        return symbol if symbol in self.watchlist else OTHER_SYMBOL

    def error(self, stage: ErrorStage) -> None:
        """Counts one error at a stage of the loop."""
        self.errors.labels(stage).inc()

    def set_model(self, version: str, bullish_prior: float | None = None) -> None:
        """Marks the serving model version (the one before, if any, is no longer shown) and
        its prior (NaN when unknown), and exposes its agreement counters at 0. Versions are
        few (each promotion adds one), so the `model_version` label stays bounded."""
        self.model_info.clear()
        self.model_info.labels(version).set(1)
        self.model_bullish_prior.set(float("nan") if bullish_prior is None else bullish_prior)
        for agreement in AGREEMENTS:
            self.author_tags.labels(agreement, version)

    def reload(self, outcome: ReloadOutcome) -> None:
        """Counts one attempt to take over a new CURRENT."""
        self.model_reloads.labels(outcome).inc()

    def observe_end_to_end(self, seconds: Sequence[float]) -> None:
        """Observes a batch's end-to-end latencies: the same result as one `observe` each,
        with one increment per touched bucket instead of a bucket walk per message."""
        observe_many(self.end_to_end_seconds, seconds)

    def forget_partitions(self, partitions: Iterable[tuple[str, int]]) -> None:
        """Drops lag series of partitions this instance no longer owns."""
        for topic, partition in partitions:
            with contextlib.suppress(KeyError):
                self.consumer_lag.remove(topic, str(partition))


def observe_many(histogram: Histogram, amounts: Sequence[float]) -> None:
    """`histogram.observe(a)` for every `a`, through the client library's public API only."""
    for amount in amounts:
        histogram.observe(amount)
