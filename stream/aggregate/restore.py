"""Rebuilds window state from the changelog: a consumer of its own (no group, assigned
partitions, read_committed) reads each partition from its start to its end (the last
stable offset: an aborted or open transaction's records are never part of the state)."""

from __future__ import annotations

import logging
import time
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from common.kafka_settings import client_config
from stream.aggregate.window_state import PartitionState

log = logging.getLogger(__name__)

RESTORE_POLL_MS = 500


class ChangelogReader:
    """Restores the state of changelog partitions on demand."""

    def __init__(self, kafka: Any, client_id: str) -> None:
        self.consumer = KafkaConsumer(
            **client_config(kafka),
            client_id=client_id,
            group_id=None,
            enable_auto_commit=False,
            isolation_level="read_committed",
            max_poll_records=50_000,
            fetch_max_bytes=64 * 1024 * 1024,
        )

    def restore(self, partitions: list[TopicPartition]) -> dict[int, PartitionState]:
        """The state of each partition, read to its end."""
        consumer = self.consumer
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends: dict[TopicPartition, int] = consumer.end_offsets(partitions)
        states = {tp.partition: PartitionState() for tp in partitions}
        started, applied = time.monotonic(), 0
        waiting = [tp for tp in partitions if consumer.position(tp) < ends[tp]]
        while waiting:
            for tp, records in consumer.poll(timeout_ms=RESTORE_POLL_MS).items():
                state = states[tp.partition]
                for record in records:
                    state.restore(record.key, record.value)
                applied += len(records)
            waiting = [tp for tp in waiting if consumer.position(tp) < ends[tp]]
        consumer.unsubscribe()
        log.info(
            "restored %d changelog records of %d partitions in %.2fs",
            applied,
            len(partitions),
            time.monotonic() - started,
        )
        return states

    def close(self) -> None:
        """Closes the consumer."""
        self.consumer.close()
