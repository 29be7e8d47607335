"""Creating topics that do not exist yet, and waiting until they can be used."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from common.kafka_settings import KafkaConnection, client_config

# The aggregator's changelog keeps the last state per key (a window closed is a tombstone)
CHANGELOG_CONFIGS = {"cleanup.policy": "compact", "min.compaction.lag.ms": "0"}


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
