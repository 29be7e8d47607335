"""Options of `stocksent classify`: one flag and one `STOCKSENT_<NAME>` variable each."""

from __future__ import annotations

import logging
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

from common import topics
from common.kafka_settings import CONNECTION_OPTIONS
from common.options import (
    LOG_LEVEL_OPTION,
    Option,
    SettingsError,
    comma_list,
    describe,
    non_empty_text,
    port,
    positive_float,
    positive_int,
    text,
)

ProcessingGuarantee = Literal["at-least-once", "exactly-once"]
PROCESSING_GUARANTEES: tuple[ProcessingGuarantee, ...] = ("at-least-once", "exactly-once")

DEFAULT_GROUP_ID = "stocksent-classifier"
DEFAULT_BATCH_SIZE = 2048
DEFAULT_BATCH_WAIT_MS = 5
# The largest input record the classifier will try to decode; StockTwits message objects are
# a few KB (the 2026 schema with a reshared message ~10 KB), so 256 KiB is generous.
DEFAULT_MAX_MESSAGE_BYTES = 256 * 1024
DEFAULT_METRICS_PORT = 9300
# TensorFlow threads per model call (intra-op; inter-op gets the same). 0 means TensorFlow's
# default, one per core. The benchmark measures the choice (bench/results/latest.json).
DEFAULT_INFERENCE_THREADS = 1
# Batches scored at once, each by its own call on its own thread. One LSTM call hardly gains
# from a second core (its steps run one after another), but two calls on one thread each
# keep two cores busy. The benchmark measures the choice too.
DEFAULT_INFERENCE_WORKERS = 2
# How often a classifier on a model store reads CURRENT (SIGHUP checks at once).
DEFAULT_MODEL_POLL_S = 10.0


def _model_spec(value: str) -> str:
    """A model directory, `py:module:factory`, or empty for the committed artifact."""
    value = value.strip()
    if value.startswith("py:"):
        if value.count(":") != 2 or not all(value.split(":")[1:]):
            raise ValueError("expected py:package.module:factory")
        return value
    if value and not Path(value).is_dir():
        raise ValueError("no such model directory")
    if value and not (Path(value) / "saved_model.pb").is_file():
        raise ValueError("not an exported model (no saved_model.pb in it)")
    return value


def _model_store(value: str) -> str:
    """A model store directory (checked for CURRENT once the settings are complete), or
    empty for none."""
    value = value.strip()
    if value and not Path(value).is_dir():
        raise ValueError("no such directory")
    return value


def _model_poll_s(value: str) -> float:
    seconds = positive_float(value)
    if seconds > 86_400:
        raise ValueError("must be at most 86400 (a day)")
    return seconds


def _batch_wait_ms(value: str) -> int:
    wait = int(value)
    if not 0 <= wait <= 60_000:
        raise ValueError("must be between 0 and 60000")
    return wait


def _inference_threads(value: str) -> int:
    threads = int(value)
    if not 0 <= threads <= 256:
        raise ValueError("must be between 0 and 256")
    return threads


def _inference_workers(value: str) -> int:
    workers = int(value)
    if not 1 <= workers <= 64:
        raise ValueError("must be between 1 and 64")
    return workers


def _symbols(value: str) -> tuple[str, ...]:
    return tuple(s.upper().removeprefix("$") for s in comma_list(value))


OPTIONS: tuple[Option, ...] = (
    *CONNECTION_OPTIONS,
    Option("input_topic", non_empty_text, topics.INPUT_TOPIC, "topic of raw StockTwits messages"),
    Option("output_topic", non_empty_text, topics.OUTPUT_TOPIC, "topic of labeled records"),
    Option(
        "dlq_topic", non_empty_text, topics.DLQ_TOPIC, "topic of records that cannot be labeled"
    ),
    Option("group_id", non_empty_text, DEFAULT_GROUP_ID, "Kafka consumer group of the classifiers"),
    Option(
        "instance_id",
        text,
        "",
        "stable name of this instance; names its transactional.id in exactly-once mode "
        "(default: the host name); each running instance needs its own",
    ),
    Option(
        "model",
        _model_spec,
        "",
        "exported model directory (default: the committed pretrained artifact)",
    ),
    Option(
        "model_store",
        _model_store,
        "",
        "model store directory: serve the version its CURRENT names and follow it "
        "(instead of --model)",
    ),
    Option(
        "model_poll_s",
        _model_poll_s,
        DEFAULT_MODEL_POLL_S,
        "seconds between checks of the store's CURRENT (SIGHUP checks at once)",
    ),
    Option("batch_size", positive_int, DEFAULT_BATCH_SIZE, "max messages per inference"),
    Option(
        "batch_wait_ms",
        _batch_wait_ms,
        DEFAULT_BATCH_WAIT_MS,
        "max wait to fill a batch while the model is free (while it is busy, a batch keeps "
        "filling until it is free or full)",
    ),
    Option(
        "inference_threads",
        _inference_threads,
        DEFAULT_INFERENCE_THREADS,
        "TensorFlow threads per model call (0: one per core); the Kafka loop needs a core too",
    ),
    Option(
        "inference_workers",
        _inference_workers,
        DEFAULT_INFERENCE_WORKERS,
        "model calls at once, each on its own thread, for full batches (outputs stay in order)",
    ),
    Option(
        "processing_guarantee",
        text,
        "at-least-once",
        "at-least-once, or exactly-once with Kafka transactions",
        choices=PROCESSING_GUARANTEES,
    ),
    Option(
        "max_message_bytes",
        positive_int,
        DEFAULT_MAX_MESSAGE_BYTES,
        "input records larger than this go to the DLQ as oversize",
    ),
    Option(
        "symbols",
        _symbols,
        ("SPY", "AAPL", "TSLA", "NVDA", "AMZN", "MSFT", "QQQ", "BTC.X"),
        "watchlist: symbols with their own metric label (others count as `other`)",
    ),
    Option(
        "stall_timeout_s",
        positive_float,
        60.0,
        "seconds without progress on waiting input after which /healthz reports the loop stuck",
    ),
    Option("metrics_host", non_empty_text, "127.0.0.1", "address of /metrics, /healthz, /readyz"),
    Option("metrics_port", port, DEFAULT_METRICS_PORT, "port of /metrics (0 disables)"),
    LOG_LEVEL_OPTION,
)


@dataclass(frozen=True)
class ClassifierSettings:
    """The resolved, typed settings of one classifier instance."""

    kafka: Mapping[str, Any]  # connection + security values, for common.kafka_settings
    input_topic: str
    output_topic: str
    dlq_topic: str
    group_id: str
    instance_id: str
    model: str
    model_store: str
    model_poll_s: float
    batch_size: int
    batch_wait_ms: int
    inference_threads: int
    inference_workers: int
    processing_guarantee: ProcessingGuarantee
    max_message_bytes: int
    symbols: tuple[str, ...]
    stall_timeout_s: float
    metrics_host: str
    metrics_port: int
    log_level: str

    @property
    def exactly_once(self) -> bool:
        """True when each batch is one Kafka transaction."""
        return self.processing_guarantee == "exactly-once"

    @property
    def transactional_id(self) -> str:
        """Stable per instance, so a restarted instance fences its crashed predecessor and
        aborts its open transaction at once instead of after the transaction timeout."""
        return f"{self.group_id}.{self.instance_id}"

    @property
    def log_level_number(self) -> int:
        """The `logging` level number."""
        return cast(int, getattr(logging, self.log_level))


def from_values(values: Mapping[str, Any]) -> ClassifierSettings:
    """Typed settings from `common.options.resolve` output; raises SettingsError."""
    connection = {o.name: values[o.name] for o in CONNECTION_OPTIONS}
    input_topic = values["input_topic"]
    if input_topic in (values["output_topic"], values["dlq_topic"]):
        raise SettingsError(
            f"--input-topic: {input_topic!r} must differ from --output-topic and --dlq-topic"
        )
    instance_id = (values["instance_id"] or "").strip() or socket.gethostname()
    model_store = values["model_store"]
    if model_store and values["model"]:
        raise SettingsError(
            "--model and --model-store (STOCKSENT_MODEL, STOCKSENT_MODEL_STORE): give one, "
            "not both (a store names its serving model in CURRENT)"
        )
    if model_store and not (Path(model_store) / "CURRENT").is_file():
        raise SettingsError(
            f"--model-store: {model_store!r} is not a model store (no CURRENT); "
            f"create it with: stocksent models init --store {model_store}"
        )
    return ClassifierSettings(
        kafka=connection,
        input_topic=input_topic,
        output_topic=values["output_topic"],
        dlq_topic=values["dlq_topic"],
        group_id=values["group_id"],
        instance_id=instance_id,
        model=values["model"],
        model_store=model_store,
        model_poll_s=values["model_poll_s"],
        batch_size=values["batch_size"],
        batch_wait_ms=values["batch_wait_ms"],
        inference_threads=values["inference_threads"],
        inference_workers=values["inference_workers"],
        processing_guarantee=values["processing_guarantee"],
        max_message_bytes=values["max_message_bytes"],
        symbols=values["symbols"],
        stall_timeout_s=values["stall_timeout_s"],
        metrics_host=values["metrics_host"],
        metrics_port=values["metrics_port"],
        log_level=values["log_level"],
    )


def effective_configuration(values: Mapping[str, Any]) -> str:
    """The configuration as it will be used, secrets masked, for the start-up log."""
    return describe(values, OPTIONS)
