"""An in-memory twin of the Kafka the classifier uses, for unit tests that drive the loop
deterministically, without a broker and without sleeping.

`MemoryBroker` holds topics (partitions of records with offsets), each group's committed
offsets and the producers' transactions. `MemoryConsumer` and `MemoryProducer` satisfy
`stream.kafka_port`'s protocols the way kafka-python's clients do where the loop can tell:
a read_committed consumer sees only committed records; a rebalance is heard inside `poll()`;
an asynchronous commit's answer comes with the next `poll()`; a transaction's records and
offsets become visible together at its commit, or never; a producer must `init_transactions`
before its first transaction. Failures are injected: a retriable or permanent send failure,
a failed commit, a fenced producer, a record the client cannot parse, a lost broker.
Behaviour is read back from the broker (`records`, `committed`) and the clients' logs.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

from kafka import errors as kafka_errors

from stream.kafka_port import (
    CommitCallback,
    Headers,
    InputRecord,
    Partition,
    RebalanceListener,
    SendFuture,
)
from stream.unreadable import MAX_ERROR_CHARS, UnreadableRecord


class TopicPartition(NamedTuple):
    """A partition of a topic (compares equal to kafka-python's)."""

    topic: str
    partition: int


class MemoryRecord(NamedTuple):
    """A stored record, with the attributes of kafka-python's ConsumerRecord the loop reads."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]
    timestamp: int


# (topic, key, value, headers) -> the error a send of it fails with for good, or None
Refusal = Callable[[str, bytes | None, bytes | None, Headers], BaseException | None]


class MemoryBroker:
    """Topics, committed offsets, and records the client cannot parse."""

    def __init__(self, partitions: Mapping[str, int]) -> None:
        self._logs: dict[str, list[list[MemoryRecord]]] = {
            topic: [[] for _ in range(count)] for topic, count in partitions.items()
        }
        self._committed: dict[str, dict[TopicPartition, int]] = {}
        self.unparsable: set[tuple[TopicPartition, int]] = set()
        self.connected = True  # what the clients say of their broker connection

    def partition_count(self, topic: str) -> int:
        """How many partitions the topic has (0: no such topic)."""
        return len(self._logs.get(topic, ()))

    def add_partitions(self, topic: str, count: int) -> None:
        """Adds partitions to a topic (as `kafka-topics --alter --partitions`)."""
        self._logs[topic].extend([] for _ in range(count))

    def append(
        self,
        topic: str,
        partition: int,
        value: bytes | None,
        key: bytes | None = None,
        headers: Headers = (),
        timestamp_ms: int = 1_700_000_000_000,
    ) -> MemoryRecord:
        """Appends one record (as a producer's acknowledged write); returns it."""
        log = self._logs[topic][partition]
        record = MemoryRecord(topic, partition, len(log), key, value, list(headers), timestamp_ms)
        log.append(record)
        return record

    def produce(self, topic: str, partition: int, values: Sequence[bytes | None]) -> None:
        """Appends input records, keyed by their position in `values`."""
        for i, value in enumerate(values):
            self.append(topic, partition, value, key=str(i).encode())

    def log(self, topic: str, partition: int) -> list[MemoryRecord]:
        """One partition's records, oldest first."""
        return list(self._logs[topic][partition])

    def records(self, topic: str) -> list[MemoryRecord]:
        """Every record of the topic, by partition, then offset."""
        return [record for log in self._logs[topic] for record in log]

    def end_offset(self, tp: TopicPartition) -> int:
        """The offset the next record of the partition gets."""
        return len(self._logs[tp.topic][tp.partition])

    def committed(self, group: str) -> dict[TopicPartition, int]:
        """The group's committed offsets."""
        return dict(self._committed.get(group, {}))

    def commit(self, group: str, offsets: Mapping[Partition, int]) -> None:
        """Stores committed offsets for the group."""
        stored = self._committed.setdefault(group, {})
        for tp, offset in offsets.items():
            stored[TopicPartition(tp.topic, tp.partition)] = offset

    def make_unparsable(self, topic: str, partition: int, offset: int) -> None:
        """The client fails to parse this record (e.g. a header name that is not UTF-8)."""
        self.unparsable.add((TopicPartition(topic, partition), offset))


@dataclass
class MemoryFuture:
    """A send's outcome; settled (acknowledged or failed) by the producer's flush."""

    error: BaseException | None = None
    settled: bool = False
    exception: BaseException | None = None

    def failed(self) -> bool:
        """True once settled with an error."""
        return self.settled and self.exception is not None

    def settle(self) -> None:
        """The broker answered."""
        self.settled, self.exception = True, self.error


class MemoryConsumer:
    """A group consumer of one topic; the group owns every partition unless `rebalance`
    says otherwise."""

    def __init__(self, broker: MemoryBroker, group: str = "classifier") -> None:
        self.broker = broker
        self.group = group
        self.topic = ""
        self.listener: RebalanceListener | None = None
        self._assigned: set[TopicPartition] = set()
        self._positions: dict[TopicPartition, int] = {}
        self._rebalances: deque[tuple[set[TopicPartition], set[TopicPartition]]] = deque()
        self._answers: deque[tuple[CommitCallback, Exception | None]] = deque()
        self._poll_errors: deque[Exception] = deque()
        self._commit_errors: deque[Exception] = deque()
        self._half_read: tuple[TopicPartition, int] | None = None
        self.seeks: list[tuple[TopicPartition, int]] = []
        self.commits: list[dict[TopicPartition, int]] = []  # each commit asked for
        # called by a poll that finds nothing to return (e.g. a test's `service.stop`)
        self.on_caught_up: Callable[[], object] | None = None
        self.polls = 0
        self.closed = False

    # ---- injections ----------------------------------------------------------------------

    def rebalance(self, revoke: Sequence[int] = (), assign: Sequence[int] = ()) -> None:
        """At the next poll, the group takes these partitions away and gives these."""
        self._rebalances.append(
            ({TopicPartition(self.topic, p) for p in revoke},
             {TopicPartition(self.topic, p) for p in assign})
        )  # fmt: skip

    def fail_polls(self, *errors: Exception) -> None:
        """The next polls raise these, one each."""
        self._poll_errors.extend(errors)

    def fail_commits(self, *errors: Exception) -> None:
        """The next commits fail with these, one each (an asynchronous one in its answer)."""
        self._commit_errors.extend(errors)

    # ---- ConsumerPort ----------------------------------------------------------------------

    def subscribe(self, topic: str, listener: RebalanceListener) -> None:
        """Joins the group; its partitions are assigned at the first poll."""
        self.topic, self.listener = topic, listener
        everything = range(self.broker.partition_count(topic))
        self._rebalances.appendleft((set(), {TopicPartition(topic, p) for p in everything}))

    def poll(self, timeout_ms: int, max_records: int) -> Mapping[Partition, list[InputRecord]]:
        """Rebalances and commit answers first, as the client does; then up to
        `max_records` records from the positions (never waits)."""
        self.polls += 1
        while self._answers:
            callback, error = self._answers.popleft()
            callback(error)
        while self._rebalances:
            self._apply_rebalance(*self._rebalances.popleft())
        if self._poll_errors:
            raise self._poll_errors.popleft()
        fetched = self._fetch(max_records)
        if not fetched and self.on_caught_up is not None:
            self.on_caught_up()
        return fetched

    def unreadable(self, error: BaseException) -> tuple[Partition, InputRecord] | None:
        """The record the last poll failed on, the consumer moved past it."""
        if self._half_read is None or not isinstance(error, kafka_errors.CorruptRecordError):
            return None
        tp, offset = self._half_read
        self._half_read = None
        self.seek(tp, offset + 1)
        text = f"{type(error).__name__}: {error}"[:MAX_ERROR_CHARS]
        return tp, UnreadableRecord(tp.topic, tp.partition, offset, None, None, [], -1, text)

    def commit_async(self, offsets: Mapping[Partition, int], callback: CommitCallback) -> None:
        """Stores the offsets unless a failure was injected; answers at the next poll."""
        self.commits.append(_plain(offsets))
        error = self._commit_errors.popleft() if self._commit_errors else None
        if error is None:
            self.broker.commit(self.group, offsets)
        self._answers.append((callback, error))

    def commit(self, offsets: Mapping[Partition, int], timeout_ms: int) -> None:
        """Stores the offsets, or raises the injected failure."""
        self.commits.append(_plain(offsets))
        if self._commit_errors:
            raise self._commit_errors.popleft()
        self.broker.commit(self.group, offsets)

    def assignment(self) -> set[Partition]:
        """The partitions owned now."""
        return set(self._assigned)

    def seek(self, partition: Partition, offset: int) -> None:
        """Moves the position; logged in `seeks`."""
        tp = TopicPartition(partition.topic, partition.partition)
        if tp not in self._assigned:
            raise kafka_errors.IllegalStateError(f"No current assignment for partition {tp}")
        self.seeks.append((tp, offset))
        self._positions[tp] = offset

    def position(self, partition: Partition) -> int | None:
        """The next offset to read."""
        return self._positions.get(TopicPartition(partition.topic, partition.partition))

    def highwater(self, partition: Partition) -> int | None:
        """The partition's end offset."""
        return self.broker.end_offset(TopicPartition(partition.topic, partition.partition))

    def partition_count(self, topic: str) -> int:
        """How many partitions the topic has."""
        return self.broker.partition_count(topic)

    def group_metadata(self) -> object:
        """The group id stands for the client's group metadata."""
        return self.group

    def broker_connected(self) -> bool | None:
        """What the broker was told to say."""
        return self.broker.connected

    def close(self, timeout_ms: int) -> None:
        """Leaves the group."""
        self.closed = True

    # ---- inside poll -------------------------------------------------------------------------

    def _apply_rebalance(self, revoke: set[TopicPartition], assign: set[TopicPartition]) -> None:
        revoked = revoke & self._assigned
        if revoked and self.listener is not None:
            self.listener.on_revoked(set(revoked))
        self._assigned -= revoked
        for tp in revoked:
            self._positions.pop(tp, None)
        gained = assign - self._assigned
        committed = self.broker.committed(self.group)
        for tp in gained:
            self._positions[tp] = committed.get(tp, 0)  # auto_offset_reset=earliest
        self._assigned |= gained
        if gained and self.listener is not None:
            self.listener.on_assigned(set(gained))

    def _fetch(self, max_records: int) -> dict[Partition, list[InputRecord]]:
        fetched: dict[Partition, list[InputRecord]] = {}
        room = max_records
        for tp in sorted(self._assigned):
            position = self._positions[tp]
            taken: list[InputRecord] = []
            for record in self.broker.log(tp.topic, tp.partition)[position:]:
                if room == 0:
                    break
                if (tp, record.offset) in self.broker.unparsable:
                    if not fetched and not taken:  # the client raises on it
                        self._half_read = (tp, record.offset)
                        raise kafka_errors.CorruptRecordError(
                            "Found invalid record structure: UnicodeDecodeError(...)"
                        )
                    break  # returned before it; the next poll raises
                taken.append(record)
                room -= 1
            if taken:
                fetched[tp] = taken
                self._positions[tp] = taken[-1].offset + 1
        return fetched


@dataclass
class MemoryProducer:
    """A producer; transactional when `transactional`. `refuse` decides which sends the
    broker refuses for good; `broker_down` makes every send fail with a timeout."""

    broker: MemoryBroker
    transactional: bool = False
    refuse: Refusal | None = None
    broker_down: bool = False
    transactions: list[str] = field(default_factory=list)  # init, begin, commit, abort
    closed: bool = False
    _fenced: bool = False
    _initialised: bool = False
    _open: bool = False
    _pending: list[tuple[MemoryFuture, tuple[str, int, bytes | None, bytes | None, Headers]]] = (
        field(default_factory=list)
    )
    _offsets: dict[str, dict[Partition, int]] = field(default_factory=dict)

    def fence(self) -> None:
        """Another instance took the transactional.id: the broker's next answer to a
        transactional call (offsets, commit, abort) says so."""
        self._fenced = True

    # ---- ProducerPort ----------------------------------------------------------------------

    def send(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None,
        headers: Headers | None = None,
        partition: int | None = None,
    ) -> SendFuture:
        """Queues a record, checked as kafka-python checks it before sending."""
        if self.transactional and not self._open:
            raise kafka_errors.IllegalStateError("send outside a transaction")
        _check_sendable(value, key, headers)
        count = self.broker.partition_count(topic)
        if partition is not None and partition not in range(count):
            raise ValueError(f"Unrecognized partition {partition} for topic {topic}")
        if partition is None:  # the key partitioner, deterministic enough for a twin
            partition = sum(key or b"") % count
        error: BaseException | None = None
        if self.broker_down:
            error = kafka_errors.KafkaTimeoutError("the broker cannot be reached")
        elif self.refuse is not None:
            error = self.refuse(topic, key, value, headers or ())
        future = MemoryFuture(error)
        self._pending.append((future, (topic, partition, key, value, headers or ())))
        return future

    def flush(self) -> None:
        """Settles every queued send; outside a transaction, the good ones are written."""
        for future, _ in self._pending:
            future.settle()
        if not self.transactional:
            self._write()

    def partition_count(self, topic: str) -> int:
        """How many partitions the topic has."""
        return self.broker.partition_count(topic)

    def init_transactions(self) -> None:
        """Must come before the first transaction."""
        self._check_fenced()
        self._initialised = True
        self.transactions.append("init")

    def begin_transaction(self) -> None:
        """Opens a transaction (locally: a fencing is found at the broker's next answer)."""
        if not self._initialised or self._open:
            raise kafka_errors.IllegalStateError("begin_transaction: not ready for one")
        self._open = True
        self.transactions.append("begin")

    def send_offsets_to_transaction(
        self, offsets: Mapping[Partition, int], group_metadata: object
    ) -> None:
        """The offsets commit with the open transaction."""
        self._check_fenced()
        if not self._open:
            raise kafka_errors.IllegalStateError("no open transaction")
        self._offsets.setdefault(str(group_metadata), {}).update(offsets)

    def commit_transaction(self) -> None:
        """Writes the transaction's records and offsets together; raises (leaving it to be
        aborted) when a send of it failed."""
        self._check_fenced()
        if not self._open:
            raise kafka_errors.IllegalStateError("no open transaction")
        self.flush()
        for future, _ in self._pending:
            if future.exception is not None:
                raise kafka_errors.KafkaError(f"transaction failed: {future.exception!r}")
        self._write()
        for group, offsets in self._offsets.items():
            self.broker.commit(group, offsets)
        self._offsets.clear()
        self._open = False
        self.transactions.append("commit")

    def abort_transaction(self) -> None:
        """Drops the transaction's records and offsets."""
        self._check_fenced()
        self._pending.clear()
        self._offsets.clear()
        self._open = False
        self.transactions.append("abort")

    def close(self, timeout_s: float) -> None:
        """Flushes and closes."""
        if not self.transactional:
            self.flush()
        self.closed = True

    def _write(self) -> None:
        for future, (topic, partition, key, value, headers) in self._pending:
            if future.exception is None:
                self.broker.append(topic, partition, value, key, headers)
        self._pending.clear()

    def _check_fenced(self) -> None:
        if self._fenced:
            raise kafka_errors.ProducerFencedError("another instance has the transactional.id")


def _plain(offsets: Mapping[Partition, int]) -> dict[TopicPartition, int]:
    return {TopicPartition(tp.topic, tp.partition): offset for tp, offset in offsets.items()}


def _check_sendable(value: bytes | None, key: bytes | None, headers: Headers | None) -> None:
    """What kafka-python's producer refuses before sending, so the twin refuses it too."""
    if value is None and key is None:
        raise ValueError("Need at least one: key or value")
    for header in headers or ():
        if not (
            isinstance(header, tuple)
            and len(header) == 2
            and isinstance(header[0], str)
            and isinstance(header[1], bytes)
        ):
            raise TypeError("All headers items must be (str, bytes) tuples")


if TYPE_CHECKING:  # the twin satisfies the port: checked by mypy
    from stream.kafka_port import ConsumerPort, ProducerPort

    _consumer: ConsumerPort = MemoryConsumer(MemoryBroker({}))
    _producer: ProducerPort = MemoryProducer(MemoryBroker({}))
