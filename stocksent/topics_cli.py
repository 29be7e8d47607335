"""`stocksent topics create`: the input, output and DLQ topics."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from common import topics
from common.kafka_settings import KafkaConnection, client_config
from common.options import from_arguments, group, parser_for, shared
from common.preflight import check_kafka
from common.shared_options import PARTITIONS_OPTION


@dataclass(frozen=True)
class TopicsSettings:
    """Settings of `stocksent topics create`."""

    kafka: KafkaConnection = group(KafkaConnection)
    partitions: int = shared(PARTITIONS_OPTION)


def ensure_topics(
    connection: KafkaConnection, wanted: Sequence[Any], timeout_s: float = 30.0
) -> list[str]:
    """Creates the `kafka.admin.NewTopic`s that do not exist yet and waits until every wanted
    topic has its partitions' leaders known; returns the names it created."""
    from kafka import KafkaAdminClient, KafkaConsumer

    config = client_config(connection)
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


def create_topics(connection: KafkaConnection, partitions: int) -> list[str]:
    """Creates any missing project topic; returns the names it created."""
    from kafka.admin import NewTopic

    return ensure_topics(
        connection,
        [
            NewTopic(topics.INPUT_TOPIC, partitions, 1),
            NewTopic(topics.OUTPUT_TOPIC, partitions, 1),
            NewTopic(topics.DLQ_TOPIC, 1, 1),
        ],
    )


def main(argv: list[str], prog: str = "stocksent topics") -> int:
    """Creates the topics and prints what it did."""
    parser = parser_for(TopicsSettings, prog, __doc__)
    parser.add_argument("action", choices=("create",))
    settings = from_arguments(TopicsSettings, parser.parse_args(argv))  # stocksent.cli: exit 2
    check_kafka(settings.kafka)
    created = create_topics(settings.kafka, settings.partitions)
    print("created: " + (", ".join(created) if created else "nothing (all topics exist)"))
    return 0
