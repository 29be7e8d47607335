"""`stocksent topics create`: the input, output and DLQ topics, and the aggregator's."""

from __future__ import annotations

from dataclasses import dataclass

from common import topics
from common.kafka_settings import KafkaConnection
from common.options import from_arguments, group, parse_flags, parser_for, shared
from common.preflight import check_kafka
from common.shared_options import PARTITIONS_OPTION
from common.topic_admin import CHANGELOG_CONFIGS, ensure_topics


@dataclass(frozen=True)
class TopicsSettings:
    """Settings of `stocksent topics create`."""

    kafka: KafkaConnection = group(KafkaConnection)
    partitions: int = shared(PARTITIONS_OPTION)


def create_topics(connection: KafkaConnection, partitions: int) -> list[str]:
    """Creates any missing project topic; returns the names it created."""
    from kafka.admin import NewTopic

    return ensure_topics(
        connection,
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
    parser = parser_for(TopicsSettings, prog, __doc__)
    parser.add_argument("action", choices=("create",))
    settings = from_arguments(TopicsSettings, parse_flags(parser, argv))  # stocksent.cli: exit 2
    check_kafka(settings.kafka)
    created = create_topics(settings.kafka, settings.partitions)
    print("created: " + (", ".join(created) if created else "nothing (all topics exist)"))
    return 0
