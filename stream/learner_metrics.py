"""The learner's Prometheus metrics (`stocksent_learner_*`): one closed list of names, each
registered on a registry the caller owns, so tests never share the global one."""

from __future__ import annotations

from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge

from model.learning import OUTCOMES

PREFIX: Final = "stocksent_learner_"

# The closed list: name -> what it measures. A name used anywhere else must be one of these.
METRIC_NAMES: Final[dict[str, str]] = {
    "records_consumed_total": "output records read from the topic it learns from",
    "tagged_records_total": "of those, records whose author tagged them bullish or bearish",
    "window_messages": "tagged messages in the window (deduplicated by id and normalised text)",
    "new_tagged_messages": "tagged messages added to the window since the last candidate",
    "training": "1 while a learning round (training and judging a candidate) runs",
    "last_training_seconds": "how long the last candidate took to fine-tune",
    "candidate_holdout_accuracy": "the last candidate's accuracy on its held-out slice",
    "current_holdout_accuracy": "the serving model's accuracy on the same held-out slice",
    "decisions_total": "learning rounds by outcome (promoted, rejected, skipped_..., failed)",
    "last_decision_timestamp_seconds": "when the last round ended (Unix time); at start, the "
    "saved window's last round, else the start",
    "every_seconds": "the --every setting: a round starts at least this often (for alerts)",
}

# The labels of the labelled ones (the reference table reads them here too).
METRIC_LABELS: Final[dict[str, tuple[str, ...]]] = {"decisions_total": ("outcome",)}


class LearnerMetrics:
    """All learner metrics, on one registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

        def doc(name: str) -> tuple[str, str, tuple[str, ...]]:
            return PREFIX + name, METRIC_NAMES[name], METRIC_LABELS.get(name, ())

        self.records_consumed = Counter(*doc("records_consumed_total"), registry=registry)
        self.tagged_records = Counter(*doc("tagged_records_total"), registry=registry)
        self.window_messages = Gauge(*doc("window_messages"), registry=registry)
        self.new_tagged_messages = Gauge(*doc("new_tagged_messages"), registry=registry)
        self.training = Gauge(*doc("training"), registry=registry)
        self.last_training_seconds = Gauge(*doc("last_training_seconds"), registry=registry)
        self.candidate_holdout_accuracy = Gauge(
            *doc("candidate_holdout_accuracy"), registry=registry
        )
        self.current_holdout_accuracy = Gauge(*doc("current_holdout_accuracy"), registry=registry)
        self.decisions = Counter(*doc("decisions_total"), registry=registry)
        self.last_decision_timestamp = Gauge(
            *doc("last_decision_timestamp_seconds"), registry=registry
        )
        self.every_seconds = Gauge(*doc("every_seconds"), registry=registry)
        for outcome in OUTCOMES:  # bounded and known: at 0 from the start
            self.decisions.labels(outcome)
