"""`stocksent topics create`: the input, output and DLQ topics, and the aggregator's."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

from stocksent import topics
from stocksent.kafka_settings import CONNECTION_OPTIONS, client_config
from stocksent.options import Option, SettingsError, add_options, positive_int, resolve
from stocksent.preflight import check_kafka

# The aggregator's changelog keeps the last state per key (a window closed is a tombstone)
CHANGELOG_CONFIGS = {"cleanup.policy": "compact", "min.compaction.lag.ms": "0"}

OPTIONS: tuple[Option, ...] = (
    *CONNECTION_OPTIONS,
    Option("partitions", positive_int, topics.DEFAULT_PARTITIONS, "partitions of input/output"),
)


def ensure_topics(
    settings: Mapping[str, Any], wanted: Sequence[Any], timeout_s: float = 30.0
) -> list[str]:
    """Creates the `kafka.admin.NewTopic`s that do not exist yet and waits until every wanted
    topic has its partitions' leaders known; returns the names it created."""
    from kafka import KafkaAdminClient, KafkaConsumer

    config = client_config(settings)
    admin = KafkaAdminClient(**config)
    try:
        existing = set(admin.list_topics())
        missing = [t for t in wanted if t.name not in existing]
        if missing:
            admin.create_topics(missing)
    finally:
        admin.close()
    consumer = KafkaConsumer(**config, enable_auto_commit=False)  # metadata only: no group
    try:
        deadline = time.monotonic() + timeout_s
        while not all(
            len(consumer.partitions_for_topic(t.name) or ()) == t.num_partitions for t in wanted
        ):
            if time.monotonic() >= deadline:
                raise TimeoutError(f"topics {[t.name for t in wanted]} not ready in {timeout_s}s")
            time.sleep(0.1)
            consumer.topics()  # refresh metadata
    finally:
        consumer.close()
    return [t.name for t in missing]


def create_topics(settings: Mapping[str, Any], partitions: int) -> list[str]:
    """Creates any missing project topic; returns the names it created."""
    from kafka.admin import NewTopic

    return ensure_topics(
        settings,
        [
            NewTopic(topics.INPUT_TOPIC, partitions, 1),
            NewTopic(topics.OUTPUT_TOPIC, partitions, 1),
            NewTopic(topics.DLQ_TOPIC, 1, 1),
            # the aggregator's: its output, its internal topics (as many partitions as its
            # input; the changelog compacted) and its DLQ
            NewTopic(topics.BY_SYMBOL_TOPIC, partitions, 1),
            NewTopic(topics.BY_SYMBOL_REPARTITION_TOPIC, partitions, 1),
            NewTopic(
                topics.BY_SYMBOL_CHANGELOG_TOPIC,
                partitions,
                1,
                topic_configs=dict(CHANGELOG_CONFIGS),
            ),
            NewTopic(topics.SENTIMENT_DLQ_TOPIC, 1, 1),
        ],
    )


def main(argv: list[str], prog: str = "stocksent topics") -> int:
    """Creates the topics and prints what it did."""
    parser = argparse.ArgumentParser(prog=prog, description=__doc__)
    parser.add_argument("action", choices=("create",))
    add_options(parser, OPTIONS)
    try:
        settings = resolve(parser.parse_args(argv), OPTIONS)
    except SettingsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    check_kafka(settings, settings["connect_timeout"])
    created = create_topics(settings, settings["partitions"])
    print("created: " + (", ".join(created) if created else "nothing (all topics exist)"))
    return 0
