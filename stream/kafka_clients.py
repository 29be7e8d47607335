"""kafka-python's consumer and producer behind the typed boundary of `stream.kafka_port`.

kafka-python ships no type information, so each adapter method states the types the loop
relies on and converts at the edge: offsets to `OffsetAndMetadata`, the rebalance listener
to the client's listener class, the commit callback's `(offsets, response)` to one error or
None. What the loop needs from the client's internals (an unparsable record's position,
whether a broker is connected) is asked here too, so the loop never reaches into a client.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer, OffsetAndMetadata
from kafka.coordinator.assignors.cooperative_sticky import CooperativeStickyAssignor

from common.kafka_settings import client_config, producer_config
from stream.kafka_port import (
    CommitCallback,
    ConsumerPort,
    Headers,
    InputRecord,
    Partition,
    ProducerPort,
    RebalanceListener,
    SendFuture,
)
from stream.liveness import broker_connected
from stream.producer_errors import tolerate_refused_records
from stream.settings import ClassifierSettings
from stream.unreadable import unreadable_record


class KafkaConsumerClient:
    """A `ConsumerPort` over kafka-python's `KafkaConsumer`."""

    def __init__(self, consumer: KafkaConsumer) -> None:
        self.client = consumer

    def subscribe(self, topic: str, listener: RebalanceListener) -> None:
        """Joins the group for `topic`; `listener` hears of partitions lost and gained."""
        self.client.subscribe([topic], listener=_Listener(listener))

    def poll(self, timeout_ms: int, max_records: int) -> Mapping[Partition, list[InputRecord]]:
        """Fetched records, partition -> records in offset order."""
        polled: Mapping[Partition, list[InputRecord]] = self.client.poll(
            timeout_ms=timeout_ms, max_records=max_records
        )
        return polled

    def unreadable(self, error: BaseException) -> tuple[Partition, InputRecord] | None:
        """The record `poll()` failed to parse, skipped past (stream/unreadable.py)."""
        return unreadable_record(self.client, error)

    def commit_async(self, offsets: Mapping[Partition, int], callback: CommitCallback) -> None:
        """Commits without waiting; `callback(error or None)` once the broker answers."""

        def answered(_offsets: Any, response: Any) -> None:
            callback(response if isinstance(response, Exception) else None)

        self.client.commit_async(_with_metadata(offsets), callback=answered)

    def commit(self, offsets: Mapping[Partition, int], timeout_ms: int) -> None:
        """Commits and waits for the answer (at most `timeout_ms`)."""
        self.client.commit(_with_metadata(offsets), timeout_ms=timeout_ms)

    def assignment(self) -> set[Partition]:
        """The partitions this instance owns now."""
        return set(self.client.assignment())

    def seek(self, partition: Partition, offset: int) -> None:
        """The next poll of `partition` reads from `offset`."""
        self.client.seek(partition, offset)

    def position(self, partition: Partition) -> int | None:
        """The next offset to fetch, without waiting for the broker."""
        position: int | None = self.client.position(partition, timeout_ms=0)
        return position

    def highwater(self, partition: Partition) -> int | None:
        """The partition's end offset as of the last fetch (None before one)."""
        high: int | None = self.client.highwater(partition)
        return high

    def partition_count(self, topic: str) -> int:
        """How many partitions `topic` has (0: unknown)."""
        return len(self.client.partitions_for_topic(topic) or ())

    def group_metadata(self) -> object:
        """The group's metadata, for a transaction's offsets."""
        metadata: object = self.client.group_metadata()
        return metadata

    def broker_connected(self) -> bool | None:
        """Whether any broker connection is up (None: cannot tell)."""
        return broker_connected(self.client)

    def close(self, timeout_ms: int) -> None:
        """Leaves the group without committing."""
        self.client.close(autocommit=False, timeout_ms=timeout_ms)


class KafkaProducerClient:
    """A `ProducerPort` over kafka-python's `KafkaProducer`."""

    def __init__(self, producer: KafkaProducer) -> None:
        self.client = producer

    def send(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None,
        headers: Headers | None = None,
        partition: int | None = None,
    ) -> SendFuture:
        """Queues one record; the future settles by the next flush."""
        future: SendFuture = self.client.send(
            topic, value=value, key=key, headers=headers, partition=partition
        )
        return future

    def flush(self) -> None:
        """Waits until every queued record is acknowledged or failed."""
        self.client.flush()

    def partition_count(self, topic: str) -> int:
        """How many partitions `topic` has (0: unknown)."""
        return len(self.client.partitions_for(topic) or ())

    def init_transactions(self) -> None:
        """Fences earlier instances with the same transactional.id."""
        self.client.init_transactions()

    def begin_transaction(self) -> None:
        """Starts a transaction."""
        self.client.begin_transaction()

    def send_offsets_to_transaction(
        self, offsets: Mapping[Partition, int], group_metadata: object
    ) -> None:
        """Makes the consumer offsets part of the open transaction."""
        self.client.send_offsets_to_transaction(_with_metadata(offsets), group_metadata)

    def commit_transaction(self) -> None:
        """Commits the open transaction: its records and offsets at once."""
        self.client.commit_transaction()

    def abort_transaction(self) -> None:
        """Drops the open transaction."""
        self.client.abort_transaction()

    def close(self, timeout_s: float) -> None:
        """Flushes (at most `timeout_s`) and closes."""
        self.client.close(timeout=timeout_s)


class _Listener(ConsumerRebalanceListener):
    """kafka-python's listener class (it checks the type) around ours."""

    def __init__(self, listener: RebalanceListener) -> None:
        self.listener = listener

    def on_partitions_revoked(self, revoked: Any) -> None:
        self.listener.on_revoked(set(revoked))

    def on_partitions_assigned(self, assigned: Any) -> None:
        self.listener.on_assigned(set(assigned))


def _with_metadata(offsets: Mapping[Partition, int]) -> dict[Partition, Any]:
    return {tp: OffsetAndMetadata(offset, "", -1) for tp, offset in offsets.items()}


def make_clients(settings: ClassifierSettings) -> tuple[ConsumerPort, ProducerPort]:
    """The real Kafka consumer and producer for these settings."""
    client_id = f"stocksent-classifier-{settings.instance_id}"
    consumer = KafkaConsumer(
        **client_config(settings.kafka),
        client_id=client_id,
        group_id=settings.group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",  # a new group starts at the oldest record: none skipped
        isolation_level="read_committed",  # never classify an aborted upstream write
        max_poll_records=settings.batch_size,
        # Cooperative: a joining or leaving instance moves only the partitions that change
        # owner, so the others keep flowing during the rebalance.
        partition_assignment_strategy=(CooperativeStickyAssignor,),
        session_timeout_ms=10_000,  # a killed instance's partitions move within ~10 s
        heartbeat_interval_ms=2_000,
    )
    overrides: dict[str, Any] = {"client_id": client_id}
    if settings.exactly_once:
        overrides.update(
            transactional_id=settings.transactional_id,
            # bounds how long a crashed instance's open transaction blocks read_committed
            # readers when it does not come back under the same --instance-id
            transaction_timeout_ms=30_000,
        )
    producer = KafkaProducer(**producer_config(settings.kafka, **overrides))
    tolerate_refused_records(producer)  # a refused record must not break it for good
    return KafkaConsumerClient(consumer), KafkaProducerClient(producer)
