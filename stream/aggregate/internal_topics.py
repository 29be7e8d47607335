"""The aggregator's internal topics: created at start-up when missing, checked when present.

The repartition topic has as many partitions as the input (unless configured); the
changelog exactly as many as the repartition topic (partition k holds the state of
repartition partition k), compacted. A mismatch is refused with one line: the state of a
partition would be looked for in the wrong place.
"""

from __future__ import annotations

from typing import Any

from kafka import KafkaConsumer
from kafka.admin import NewTopic

from common import topics
from common.failures import BadInputError
from common.kafka_settings import client_config
from common.topic_admin import CHANGELOG_CONFIGS, ensure_topics


def partition_counts(kafka: Any, names: list[str]) -> dict[str, int]:
    """Partitions of each existing topic among `names` (absent ones left out)."""
    consumer = KafkaConsumer(**client_config(kafka), enable_auto_commit=False)
    try:
        known = consumer.topics()
        return {n: len(consumer.partitions_for_topic(n) or ()) for n in names if n in known}
    finally:
        consumer.close()


def ensure_internal_topics(
    kafka: Any, input_topic: str, output: str, dlq: str, wanted: int
) -> tuple[int, int]:
    """Creates what is missing (the output topic and the DLQ too); returns (input
    partitions, repartition partitions). Raises BadInputError when the input is missing or
    the counts do not match."""
    repartition, changelog = topics.repartition_topic(output), topics.changelog_topic(output)
    counts = partition_counts(kafka, [input_topic, repartition, changelog])
    inputs = counts.get(input_topic, 0)
    if not inputs:
        raise BadInputError(f"--input-topic {input_topic}: no such topic (create it first)")
    partitions = counts.get(repartition) or wanted or inputs
    if wanted and counts.get(repartition, wanted) != wanted:
        raise BadInputError(
            f"--repartition-partitions {wanted}: {repartition} exists with {counts[repartition]}"
        )
    if counts.get(changelog, partitions) != partitions:
        raise BadInputError(
            f"{changelog} has {counts[changelog]} partitions, {repartition} has {partitions}: "
            "they must match (delete both, or recreate the changelog)"
        )
    ensure_topics(
        kafka,
        [
            NewTopic(repartition, partitions, 1),
            NewTopic(changelog, partitions, 1, topic_configs=dict(CHANGELOG_CONFIGS)),
            NewTopic(output, partitions, 1),
            NewTopic(dlq, 1, 1),
        ],
    )
    return inputs, partitions
