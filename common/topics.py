"""Kafka topic names: the one definition every service, test and script imports."""

from typing import Final

INPUT_TOPIC: Final = "stocktwits.messages"
"""Raw StockTwits API message objects, one per record, key = message id."""

OUTPUT_TOPIC: Final = "stocktwits.sentiment"
"""Labeled records (see stream/sentiment_record.schema.json), key unchanged."""

DLQ_TOPIC: Final = "stocktwits.messages.dlq"
"""Input records the classifier could not label: original bytes, reason in headers."""

DEFAULT_PARTITIONS: Final = 6
"""Partitions of the input and output topics created by `make run` and topic init."""

BY_SYMBOL_TOPIC: Final = "stocktwits.sentiment.by-symbol"
"""Per-symbol windows of labeled records (see stream/aggregate/window_record.schema.json),
key = symbol (UTF-8): written by `stocksent aggregate`."""

SENTIMENT_DLQ_TOPIC: Final = "stocktwits.sentiment.dlq"
"""Labeled records the aggregator could not use (malformed, or later than the grace):
original bytes, reason in headers like the classifier's DLQ."""

REPARTITION_SUFFIX: Final = ".repartition"
CHANGELOG_SUFFIX: Final = ".changelog"


def repartition_topic(output_topic: str) -> str:
    """The aggregator's internal topic of partial aggregates keyed by symbol."""
    return output_topic + REPARTITION_SUFFIX


def changelog_topic(output_topic: str) -> str:
    """The aggregator's compacted topic of window state, partition k for repartition k."""
    return output_topic + CHANGELOG_SUFFIX


BY_SYMBOL_REPARTITION_TOPIC: Final = repartition_topic(BY_SYMBOL_TOPIC)
BY_SYMBOL_CHANGELOG_TOPIC: Final = changelog_topic(BY_SYMBOL_TOPIC)
