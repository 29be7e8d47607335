"""Options of `stocksent aggregate`, declared once as the fields of `AggregatorSettings`: one
flag and one `STOCKSENT_AGGREGATOR_<NAME>` variable each (the connection options, the metrics
address and `--log-level` keep the variables every service shares)."""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass
from typing import ClassVar, cast

from common import topics
from common.kafka_settings import KafkaConnection
from common.metrics_endpoint import METRICS_HOST, metrics_port_option
from common.options import (
    LOG_LEVEL_OPTION,
    SettingsError,
    group,
    int_between,
    non_empty_text,
    non_negative_int,
    positive_float,
    positive_int,
    setting,
    shared,
    text,
)
from common.symbols import symbol_list
from stream.aggregate.durations import Duration, duration, optional_window_duration, window_duration
from stream.aggregate.windows import View
from stream.settings import PROCESSING_GUARANTEES

DEFAULT_GROUP_ID = "stocksent-aggregator"
DEFAULT_TOP_SYMBOLS = 10
DEFAULT_WATCHLIST = ("SPY", "AAPL", "TSLA", "NVDA", "AMZN", "MSFT", "QQQ", "BTC.X")
# Records per poll of the re-key stage: one transaction each. Large, so the fixed cost of a
# transaction (several round trips) and the repartition records are spread over many.
DEFAULT_MAX_POLL_RECORDS = 50_000


@dataclass(frozen=True)
class AggregatorSettings:
    """The resolved, typed settings of one aggregator instance."""

    env_prefix: ClassVar[str] = "aggregator_"

    kafka: KafkaConnection = group(KafkaConnection)
    input_topic: str = setting(
        non_empty_text,
        topics.OUTPUT_TOPIC,
        "topic of labeled records (read_committed)",
    )
    output_topic: str = setting(
        non_empty_text,
        topics.BY_SYMBOL_TOPIC,
        "topic of per-symbol windows; its internal "
        "topics are <output>.repartition and <output>.changelog",
    )
    dlq_topic: str = setting(
        non_empty_text,
        topics.SENTIMENT_DLQ_TOPIC,
        "topic of labeled records that cannot be used or are later than the grace",
    )
    group_id: str = setting(
        non_empty_text,
        DEFAULT_GROUP_ID,
        "consumer group of the aggregators (the window stage uses <group>.windows)",
    )
    instance_name: str = setting(
        text,
        "",
        "stable name of this instance; names its transactional.ids (default: the "
        "host name); each running instance needs its own",
        flag="instance_id",
    )
    window: Duration = setting(window_duration, "60s", "tumbling window by event time")
    long_window: Duration | None = setting(
        optional_window_duration,
        "1h",
        "a second, longer tumbling view for dashboards (0 disables)",
    )
    grace: Duration = setting(
        duration,
        "30s",
        "how late (behind its partition's watermark) a record may be and still count",
    )
    emit_every: Duration = setting(
        duration,
        "0",
        "early non-final updates of open windows this often (0: final windows only)",
    )
    processing_guarantee: str = setting(
        text,
        "exactly-once",
        "exactly-once (Kafka transactions) or at-least-once",
        choices=PROCESSING_GUARANTEES,
    )
    repartition_partitions: int = setting(
        non_negative_int,
        0,
        "partitions of the repartition and changelog topics when created "
        "(0: as many as the input topic)",
    )
    max_poll_records: int = setting(
        positive_int,
        DEFAULT_MAX_POLL_RECORDS,
        "records per batch (one transaction each)",
    )
    top_symbols: int = setting(
        int_between(0, 1000),
        DEFAULT_TOP_SYMBOLS,
        "symbols by volume exported as metric labels, besides the watchlist",
    )
    watchlist: tuple[str, ...] = setting(
        symbol_list,
        DEFAULT_WATCHLIST,
        "symbols always exported as metric labels",
    )
    stall_timeout_s: float = setting(
        positive_float,
        60.0,
        "seconds without progress on waiting input after which /healthz reports the loop stuck",
    )
    metrics_host: str = shared(METRICS_HOST)
    metrics_port: int = shared(metrics_port_option("aggregator"), flag="metrics_port")
    log_level: str = shared(LOG_LEVEL_OPTION)

    def __post_init__(self) -> None:
        long_window = self.long_window
        if long_window is not None and long_window.ms <= self.window.ms:
            raise SettingsError(
                f"--long-window {long_window.name}: must be longer than --window {self.window.name}"
            )
        if len({self.input_topic, self.output_topic, self.dlq_topic}) < 3:
            raise SettingsError("--input-topic, --output-topic and --dlq-topic must all differ")

    @property
    def instance_id(self) -> str:
        """`--instance-id`, or the host name."""
        return self.instance_name.strip() or socket.gethostname()

    @property
    def views(self) -> tuple[View, ...]:
        """The window and, unless disabled, the long window."""
        views = [View(self.window.name, self.window.ms)]
        if self.long_window is not None:
            views.append(View(self.long_window.name, self.long_window.ms))
        return tuple(views)

    @property
    def grace_ms(self) -> int:
        return self.grace.ms

    @property
    def emit_every_ms(self) -> int:
        return self.emit_every.ms

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
