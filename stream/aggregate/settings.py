"""Options of `stocksent aggregate`: one flag and one `STOCKSENT_AGGREGATOR_<NAME>` variable
each (the connection options and `--log-level` keep the `STOCKSENT_<NAME>` every service
shares)."""

from __future__ import annotations

import logging
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from common import topics
from common.kafka_settings import CONNECTION_OPTIONS, KafkaConnection
from common.options import (
    ENV_PREFIX,
    LOG_LEVEL_OPTION,
    Option,
    SettingsError,
    build,
    comma_list,
    describe_values,
    non_empty_text,
    non_negative_int,
    port,
    positive_float,
    positive_int,
    text,
)
from stream.aggregate.durations import Duration, duration, optional_window_duration, window_duration
from stream.aggregate.windows import View
from stream.settings import PROCESSING_GUARANTEES, ProcessingGuarantee

AGGREGATOR_ENV_PREFIX = ENV_PREFIX + "AGGREGATOR_"
DEFAULT_GROUP_ID = "stocksent-aggregator"
DEFAULT_METRICS_PORT = 9303
DEFAULT_TOP_SYMBOLS = 10
DEFAULT_WATCHLIST = ("SPY", "AAPL", "TSLA", "NVDA", "AMZN", "MSFT", "QQQ", "BTC.X")
# Records per poll of the re-key stage: one transaction each. Large, so the fixed cost of a
# transaction (several round trips) and the repartition records are spread over many.
DEFAULT_MAX_POLL_RECORDS = 50_000


class AggregatorOption(Option):
    """An option of the aggregator: its variable is `STOCKSENT_AGGREGATOR_<NAME>`."""

    @property
    def env(self) -> str:
        """`STOCKSENT_AGGREGATOR_<NAME>`."""
        return AGGREGATOR_ENV_PREFIX + self.name.upper()


def _symbols(value: str) -> tuple[str, ...]:
    return tuple(s.upper().removeprefix("$") for s in comma_list(value))


def _top_symbols(value: str) -> int:
    count = int(value)
    if not 0 <= count <= 1000:
        raise ValueError("must be between 0 and 1000")
    return count


A = AggregatorOption
OPTIONS: tuple[Option, ...] = (
    *CONNECTION_OPTIONS,
    A("input_topic", non_empty_text, topics.OUTPUT_TOPIC, "topic of labeled records (read_committed)"),
    A("output_topic", non_empty_text, topics.BY_SYMBOL_TOPIC, "topic of per-symbol windows; "
      "its internal topics are <output>.repartition and <output>.changelog"),
    A("dlq_topic", non_empty_text, topics.SENTIMENT_DLQ_TOPIC,
      "topic of labeled records that cannot be used or are later than the grace"),
    A("group_id", non_empty_text, DEFAULT_GROUP_ID, "consumer group of the aggregators (the "
      "window stage uses <group>.windows)"),
    A("instance_id", text, "", "stable name of this instance; names its transactional.ids "
      "(default: the host name); each running instance needs its own"),
    A("window", window_duration, window_duration("60s"), "tumbling window by event time"),
    A("long_window", optional_window_duration, window_duration("1h"),
      "a second, longer tumbling view for dashboards (0 disables)"),
    A("grace", duration, duration("30s"), "how late (behind its partition's watermark) a "
      "record may be and still count"),
    A("emit_every", duration, duration("0"), "early non-final updates of open windows this "
      "often (0: final windows only)"),
    A("processing_guarantee", text, "exactly-once", "exactly-once (Kafka transactions) or "
      "at-least-once", choices=PROCESSING_GUARANTEES),
    A("repartition_partitions", non_negative_int, 0, "partitions of the repartition and "
      "changelog topics when created (0: as many as the input topic)"),
    A("max_poll_records", positive_int, DEFAULT_MAX_POLL_RECORDS, "records per batch "
      "(one transaction each)"),
    A("top_symbols", _top_symbols, DEFAULT_TOP_SYMBOLS, "symbols by volume exported as "
      "metric labels, besides the watchlist"),
    A("watchlist", _symbols, DEFAULT_WATCHLIST, "symbols always exported as metric labels"),
    A("stall_timeout_s", positive_float, 60.0, "seconds without progress on waiting input "
      "after which /healthz reports the loop stuck"),
    A("metrics_host", non_empty_text, "127.0.0.1", "address of /metrics, /healthz, /readyz"),
    A("metrics_port", port, DEFAULT_METRICS_PORT, "port of /metrics (0 disables)"),
    LOG_LEVEL_OPTION,
)  # fmt: skip


@dataclass(frozen=True)
class AggregatorSettings:
    """The resolved, typed settings of one aggregator instance."""

    kafka: KafkaConnection
    input_topic: str
    output_topic: str
    dlq_topic: str
    group_id: str
    instance_id: str
    views: tuple[View, ...]
    grace_ms: int
    emit_every_ms: int
    processing_guarantee: ProcessingGuarantee
    repartition_partitions: int
    max_poll_records: int
    top_symbols: int
    watchlist: tuple[str, ...]
    stall_timeout_s: float
    metrics_host: str
    metrics_port: int
    log_level: str

    @property
    def exactly_once(self) -> bool:
        """True when each batch of each stage is one Kafka transaction."""
        return self.processing_guarantee == "exactly-once"

    @property
    def repartition_topic(self) -> str:
        """`<output>.repartition`."""
        return topics.repartition_topic(self.output_topic)

    @property
    def changelog_topic(self) -> str:
        """`<output>.changelog`."""
        return topics.changelog_topic(self.output_topic)

    @property
    def window_group_id(self) -> str:
        """The window stage's consumer group (of the repartition topic)."""
        return f"{self.group_id}.windows"

    def transactional_id(self, stage: str) -> str:
        """Stable per instance and stage, so a restarted instance fences its crashed
        predecessor and aborts its open transactions at once."""
        return f"{self.group_id}.{self.instance_id}.{stage}"

    @property
    def log_level_number(self) -> int:
        """The `logging` level number."""
        return cast(int, getattr(logging, self.log_level))


def from_values(values: Mapping[str, Any]) -> AggregatorSettings:
    """Typed settings from `common.options.resolve` output; raises SettingsError."""
    window: Duration = values["window"]
    long_window: Duration | None = values["long_window"]
    views = [View(window.name, window.ms)]
    if long_window is not None:
        if long_window.ms <= window.ms:
            raise SettingsError(
                f"--long-window {long_window.name}: must be longer than --window {window.name}"
            )
        views.append(View(long_window.name, long_window.ms))
    names = {values["input_topic"], values["output_topic"], values["dlq_topic"]}
    if len(names) < 3:
        raise SettingsError("--input-topic, --output-topic and --dlq-topic must all differ")
    return AggregatorSettings(
        kafka=build(KafkaConnection, values),
        input_topic=values["input_topic"],
        output_topic=values["output_topic"],
        dlq_topic=values["dlq_topic"],
        group_id=values["group_id"],
        instance_id=(values["instance_id"] or "").strip() or socket.gethostname(),
        views=tuple(views),
        grace_ms=values["grace"].ms,
        emit_every_ms=values["emit_every"].ms,
        processing_guarantee=values["processing_guarantee"],
        repartition_partitions=values["repartition_partitions"],
        max_poll_records=values["max_poll_records"],
        top_symbols=values["top_symbols"],
        watchlist=values["watchlist"],
        stall_timeout_s=values["stall_timeout_s"],
        metrics_host=values["metrics_host"],
        metrics_port=values["metrics_port"],
        log_level=values["log_level"],
    )


def effective_configuration(values: Mapping[str, Any]) -> str:
    """The configuration as it will be used, secrets masked, for the start-up log."""
    return describe_values(values, OPTIONS)
