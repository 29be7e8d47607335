"""Settings of `stocksent classify`: one flag and one `STOCKSENT_<NAME>` variable each."""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, cast

from common.kafka_settings import KafkaConnection
from common.metrics_endpoint import METRICS_HOST, metrics_port_option
from common.options import (
    LOG_LEVEL_OPTION,
    Option,
    SettingsError,
    float_between,
    group,
    int_between,
    non_empty_text,
    options_of,
    positive_float,
    positive_int,
    setting,
    shared,
    text,
)
from common.shared_options import (
    DLQ_TOPIC_OPTION,
    INPUT_TOPIC_OPTION,
    MODEL_STORE_OPTION,
    OUTPUT_TOPIC_OPTION,
)
from common.symbols import symbol_list

ProcessingGuarantee = Literal["at-least-once", "exactly-once"]
PROCESSING_GUARANTEES: tuple[ProcessingGuarantee, ...] = ("at-least-once", "exactly-once")

DEFAULT_GROUP_ID = "stocksent-classifier"
DEFAULT_BATCH_SIZE = 2048
DEFAULT_BATCH_WAIT_MS = 5
# The largest input record the classifier will try to decode; StockTwits message objects are
# a few KB (the 2026 schema with a reshared message ~10 KB), so 256 KiB is generous.
DEFAULT_MAX_MESSAGE_BYTES = 256 * 1024
# TensorFlow threads per model call (intra-op; inter-op gets the same). 0 means TensorFlow's
# default, one per core. The benchmark measures the choice (bench/results/latest.json).
DEFAULT_INFERENCE_THREADS = 1
# Batches scored at once, each by its own call on its own thread. One LSTM call hardly gains
# from a second core (its steps run one after another), but two calls on one thread each
# keep two cores busy. The benchmark measures the choice too.
DEFAULT_INFERENCE_WORKERS = 2
# How often a classifier on a model store reads CURRENT (SIGHUP checks at once).
DEFAULT_MODEL_POLL_S = 10.0


def model_spec(value: str) -> str:
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


MODEL_OPTION = Option(
    "model",
    model_spec,
    "",
    "exported model directory, or py:module:factory (default: the committed pretrained artifact)",
)
"""The model a classifier serves; `stocksent run` takes the same option and passes it on."""

DEFAULT_WATCHLIST = ("SPY", "AAPL", "TSLA", "NVDA", "AMZN", "MSFT", "QQQ", "BTC.X")


@dataclass(frozen=True)
class ClassifierSettings:
    """The resolved, typed settings of one classifier instance."""

    kafka: KafkaConnection = group(KafkaConnection)
    input_topic: str = shared(INPUT_TOPIC_OPTION)
    output_topic: str = shared(OUTPUT_TOPIC_OPTION)
    dlq_topic: str = shared(DLQ_TOPIC_OPTION)
    group_id: str = setting(
        non_empty_text, DEFAULT_GROUP_ID, "Kafka consumer group of the classifiers"
    )
    instance_id: str = setting(
        text,
        "",
        "stable name of this instance; names its transactional.id in exactly-once mode "
        "(default: the host name); each running instance needs its own",
    )
    model: str = shared(MODEL_OPTION)
    model_store: str = shared(MODEL_STORE_OPTION)
    model_poll_s: float = setting(
        float_between(0, 86_400, low_open=True),
        DEFAULT_MODEL_POLL_S,
        "seconds between checks of the store's CURRENT (SIGHUP checks at once)",
    )
    batch_size: int = setting(positive_int, DEFAULT_BATCH_SIZE, "max messages per inference")
    batch_wait_ms: int = setting(
        int_between(0, 60_000),
        DEFAULT_BATCH_WAIT_MS,
        "max wait to fill a batch while the model is free (while it is busy, a batch keeps "
        "filling until it is free or full)",
    )
    inference_threads: int = setting(
        int_between(0, 256),
        DEFAULT_INFERENCE_THREADS,
        "TensorFlow threads per model call (0: one per core); the Kafka loop needs a core too",
    )
    inference_workers: int = setting(
        int_between(1, 64),
        DEFAULT_INFERENCE_WORKERS,
        "model calls at once, each on its own thread, for full batches (outputs stay in order)",
    )
    processing_guarantee: ProcessingGuarantee = setting(
        text,
        "at-least-once",
        "at-least-once, or exactly-once with Kafka transactions",
        choices=PROCESSING_GUARANTEES,
    )
    max_message_bytes: int = setting(
        positive_int,
        DEFAULT_MAX_MESSAGE_BYTES,
        "input records larger than this go to the DLQ as oversize",
    )
    symbols: tuple[str, ...] = setting(
        symbol_list,
        DEFAULT_WATCHLIST,
        "watchlist: symbols with their own metric label (others count as `other`)",
        flag="watchlist",
    )
    stall_timeout_s: float = setting(
        positive_float,
        60.0,
        "seconds without progress on waiting input after which /healthz reports the loop stuck",
    )
    metrics_host: str = shared(METRICS_HOST)
    metrics_port: int = shared(metrics_port_option("classifier"), flag="metrics_port")
    log_level: str = shared(LOG_LEVEL_OPTION)

    def __post_init__(self) -> None:
        if self.input_topic in (self.output_topic, self.dlq_topic):
            raise SettingsError(
                f"--input-topic: {self.input_topic!r} must differ from --output-topic and "
                "--dlq-topic"
            )
        # the host name is this instance's default name (in compose: the container id)
        object.__setattr__(self, "instance_id", self.instance_id.strip() or socket.gethostname())
        self._check_model_source()

    def _check_model_source(self) -> None:
        store = self.model_store
        if store and self.model:
            raise SettingsError(
                "--model and --model-store (STOCKSENT_MODEL, STOCKSENT_MODEL_STORE): give one, "
                "not both (a store names its serving model in CURRENT)"
            )
        if store and not Path(store).is_dir():
            raise SettingsError(f"--model-store: {store!r} is not valid: no such directory")
        if store and not (Path(store) / "CURRENT").is_file():
            raise SettingsError(
                f"--model-store: {store!r} is not a model store (no CURRENT); "
                f"create it with: stocksent models init --store {store}"
            )

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


OPTIONS: tuple[Option, ...] = options_of(ClassifierSettings)
