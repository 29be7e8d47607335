"""The classifier's boundary with Kafka: exactly what the loop uses of a consumer and a
producer, typed.

Two things satisfy it: `stream.kafka_clients` (kafka-python's clients behind thin typed
adapters, for the real broker) and `stream.memory_kafka` (an in-memory twin with offsets,
transactions, injectable failures and rebalances, for the unit tests). The steps of the loop
(stream/service.py) see only these protocols.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import Protocol

Headers = Sequence[tuple[str, bytes]]


class Partition(Hashable, Protocol):
    """A topic partition (kafka-python's `TopicPartition` or the twin's)."""

    @property
    def topic(self) -> str: ...

    @property
    def partition(self) -> int: ...


class InputRecord(Protocol):
    """The attributes of a consumed record the loop reads."""

    @property
    def topic(self) -> str: ...

    @property
    def partition(self) -> int: ...

    @property
    def offset(self) -> int: ...

    @property
    def key(self) -> bytes | None: ...

    @property
    def value(self) -> bytes | None: ...

    @property
    def headers(self) -> Sequence[tuple[str, bytes | None]]: ...

    @property
    def timestamp(self) -> int: ...


Batch = dict[Partition, list[InputRecord]]  # partition -> its records in offset order


class SendFuture(Protocol):
    """The outcome of one send, settled once the producer is flushed."""

    exception: BaseException | None

    def failed(self) -> bool: ...


class RebalanceListener(Protocol):
    """Told, inside `poll()`, which partitions this instance loses and gains."""

    def on_revoked(self, partitions: set[Partition]) -> None: ...

    def on_assigned(self, partitions: set[Partition]) -> None: ...


# Called with None when an asynchronous commit succeeded, with the error when it failed.
CommitCallback = Callable[[Exception | None], None]


class ConsumerPort(Protocol):
    """What the loop uses of a group consumer."""

    def subscribe(self, topic: str, listener: RebalanceListener) -> None: ...

    def poll(self, timeout_ms: int, max_records: int) -> Mapping[Partition, list[InputRecord]]:
        """Fetched records; raises what the client raises (see `unreadable`)."""
        ...

    def unreadable(self, error: BaseException) -> tuple[Partition, InputRecord] | None:
        """After `poll()` raised `error`: the record the client cannot parse, as a stand-in
        to dead-letter (the consumer already past it), or None (see stream/unreadable.py)."""
        ...

    def commit_async(self, offsets: Mapping[Partition, int], callback: CommitCallback) -> None: ...

    def commit(self, offsets: Mapping[Partition, int], timeout_ms: int) -> None: ...

    def assignment(self) -> set[Partition]: ...

    def seek(self, partition: Partition, offset: int) -> None: ...

    def position(self, partition: Partition) -> int | None:
        """The next offset to fetch, without waiting (None: unknown yet)."""
        ...

    def highwater(self, partition: Partition) -> int | None: ...

    def partition_count(self, topic: str) -> int:
        """How many partitions the topic has (0: unknown)."""
        ...

    def group_metadata(self) -> object: ...

    def broker_connected(self) -> bool | None:
        """Whether a broker connection is up; None when it cannot tell."""
        ...

    def close(self, timeout_ms: int) -> None: ...


class ProducerPort(Protocol):
    """What the loop uses of a producer (transactional in exactly-once mode)."""

    def send(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None,
        headers: Headers | None = None,
        partition: int | None = None,
    ) -> SendFuture:
        """Queues a record; raises at once for a record the client refuses outright."""
        ...

    def flush(self) -> None: ...

    def partition_count(self, topic: str) -> int:
        """How many partitions the topic has (0: unknown)."""
        ...

    def init_transactions(self) -> None: ...

    def begin_transaction(self) -> None: ...

    def send_offsets_to_transaction(
        self, offsets: Mapping[Partition, int], group_metadata: object
    ) -> None: ...

    def commit_transaction(self) -> None: ...

    def abort_transaction(self) -> None: ...

    def close(self, timeout_s: float) -> None: ...


def partition_names(partitions: Iterable[Partition]) -> str:
    """`topic[partition], ...` for a log line, or "none"."""
    ordered = sorted(partitions, key=lambda tp: (tp.topic, tp.partition))
    return ", ".join(f"{tp.topic}[{tp.partition}]" for tp in ordered) or "none"
