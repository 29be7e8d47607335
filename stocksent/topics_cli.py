"""`stocksent topics create`: the input, output, DLQ and producer-state topics."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from typing import Any

from stocksent import topics
from stocksent.kafka_settings import CONNECTION_OPTIONS, client_config
from stocksent.options import Option, SettingsError, add_options, positive_int, resolve

OPTIONS: tuple[Option, ...] = (
    *CONNECTION_OPTIONS,
    Option("partitions", positive_int, topics.DEFAULT_PARTITIONS, "partitions of input/output"),
)


def create_topics(settings: Mapping[str, Any], partitions: int) -> list[str]:
    """Creates any missing project topic; returns the names it created."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    admin = KafkaAdminClient(**client_config(settings))
    try:
        existing = set(admin.list_topics())
        wanted = [
            NewTopic(topics.INPUT_TOPIC, partitions, 1),
            NewTopic(topics.OUTPUT_TOPIC, partitions, 1),
            NewTopic(topics.DLQ_TOPIC, 1, 1),
            NewTopic(
                topics.PRODUCER_STATE_TOPIC, 1, 1, topic_configs={"cleanup.policy": "compact"}
            ),
        ]
        missing = [t for t in wanted if t.name not in existing]
        if missing:
            admin.create_topics(missing)
        return [t.name for t in missing]
    finally:
        admin.close()


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
    created = create_topics(settings, settings["partitions"])
    print("created: " + (", ".join(created) if created else "nothing (all topics exist)"))
    return 0
