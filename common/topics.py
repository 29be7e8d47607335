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
