"""Options that several commands take, declared once each: the same variable means the same
thing, with the same default, to every command that reads it."""

from __future__ import annotations

from common import topics
from common.options import Option, non_empty_text, positive_int, trimmed

INPUT_TOPIC_OPTION = Option(
    "input_topic", non_empty_text, topics.INPUT_TOPIC, "topic of raw StockTwits messages"
)
OUTPUT_TOPIC_OPTION = Option(
    "output_topic", non_empty_text, topics.OUTPUT_TOPIC, "topic of labeled records"
)
DLQ_TOPIC_OPTION = Option(
    "dlq_topic", non_empty_text, topics.DLQ_TOPIC, "topic of records that cannot be labeled"
)
PARTITIONS_OPTION = Option(
    "partitions",
    positive_int,
    topics.DEFAULT_PARTITIONS,
    "partitions of the input and output topics",
)
MODEL_STORE_OPTION = Option(
    "model_store",
    trimmed,
    "",
    "model store directory (versions/, CURRENT, history.jsonl): `classify` serves and follows "
    "its CURRENT (instead of --model), `learn` learns into it (required), `run` creates it "
    "when missing (default there: models/ in the state directory)",
)
