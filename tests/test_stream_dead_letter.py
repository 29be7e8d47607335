"""The DLQ write never fails on any input: what Kafka refuses is replaced or cut (and said so);
records the client cannot parse are found and skipped past. The service side (step-down,
skips, output key) is in test_stream_publishing; the real broker in tests/integration."""

from __future__ import annotations

from typing import Any

import pytest
from kafka.errors import CorruptRecordError, KafkaTimeoutError, MessageSizeTooLargeError
from kafka.record.default_records import DefaultRecordBatchBuilder

from stream import dead_letter as dlq
from stream.decode import DeadLetterReason
from stream.memory_kafka import MemoryBroker, MemoryProducer, TopicPartition
from stream.unreadable import unreadable_record

P = "stocksent_classifier_"
KAFKA_MAX_REQUEST_SIZE = 1024 * 1024  # kafka-python's (and Java's) producer default


def letter(**given: Any) -> dlq.DeadLetter:
    fields: dict[str, Any] = {
        "key": b"k",
        "value": b"v",
        "original_headers": [],
        "reason": DeadLetterReason.INVALID_JSON,
        "detail": "bad",
        "topic": "in",
        "partition": 0,
        "offset": 3,
        "timestamp_ms": 1,
        "dead_lettered_at": "2026-01-01T00:00:00.000Z",
    }
    return dlq.dead_letter(**{**fields, **given})


def kafka_size(d: dlq.DeadLetter) -> int:
    """The size kafka-python's producer checks against max.request.size."""
    return int(DefaultRecordBatchBuilder.estimate_size_in_bytes(d.key, d.value, d.headers))


def sendable(d: dlq.DeadLetter) -> None:
    MemoryProducer(MemoryBroker({"dlq": 1})).send("dlq", d.value, d.key, d.headers)  # as Kafka
    assert kafka_size(d) <= KAFKA_MAX_REQUEST_SIZE


def test_neither_key_nor_value_gets_an_empty_key_and_says_so() -> None:
    d = letter(key=None, value=None, reason=DeadLetterReason.NULL_VALUE)
    sendable(d)
    assert d.key == b"" and d.value is None
    assert dict(d.headers)[dlq.KEY_WAS_NULL] == b"true"
    with_key = letter(key=b"7", value=None)
    assert with_key.key == b"7" and dlq.KEY_WAS_NULL not in dict(with_key.headers)


def test_a_header_with_a_null_value_is_carried_as_empty_bytes() -> None:
    d = letter(original_headers=[("a", b"1"), ("b", None), ("c", b"3"), ("d", None)])
    sendable(d)
    headers = dict(d.headers)
    assert (headers["a"], headers["b"], headers["c"], headers["d"]) == (b"1", b"", b"3", b"")
    assert headers[dlq.NULL_HEADER_VALUES] == b"1,3"


@pytest.mark.parametrize(
    "name", [b"\xff\xfebad", "\udcff-surrogate", 7], ids=["bytes", "surrogate", "int"]
)
def test_a_header_name_that_is_not_valid_text_is_escaped(name: object) -> None:
    d = letter(original_headers=[("ok", b"1"), (name, b"2")])
    sendable(d)
    assert dict(d.headers)[dlq.HEADER_NAMES_ESCAPED] == b"1"
    assert d.headers[1][1] == b"2"


def test_a_copy_larger_than_kafka_takes_keeps_key_headers_and_what_fits_of_the_value() -> None:
    key, value = b"k" * 100, b"v" * 1_048_000  # fits the input topic, not with the DLQ headers
    d = letter(key=key, value=value, original_headers=[("source", b"x" * 1000)])
    sendable(d)
    assert d.key == key and dict(d.headers)["source"] == b"x" * 1000
    assert d.value == value[: len(d.value or b"")] and len(d.value or b"") > 990_000
    assert dict(d.headers)[dlq.TRUNCATED_FROM] == b"1048000"


def test_a_huge_key_and_huge_headers_are_cut_too() -> None:
    headers = [(f"h{i}", b"y" * 30_000) for i in range(40)]  # 1.2 MB of headers
    d = letter(key=b"k" * 600_000, value=b"v" * 990_000, original_headers=headers)
    sendable(d)
    out = dict(d.headers)
    assert d.key == b"k" * dlq.MAX_DLQ_KEY_BYTES
    assert out[dlq.KEY_TRUNCATED_FROM] == b"600000"
    assert 0 < int(out[dlq.HEADERS_DROPPED]) < 40 and "h0" in out and "h39" not in out
    assert out[dlq.TRUNCATED_FROM] == b"990000"


def test_a_minimal_copy_has_the_dlq_headers_only() -> None:
    d = letter(value=b"v" * 10, original_headers=[("source", b"x")], minimal=True)
    sendable(d)
    assert d.key == b"" and d.value is None
    assert {name for name, _ in d.headers} == {*dlq.HEADER_NAMES, dlq.MINIMAL}


def test_permanent_and_passing_send_errors_are_told_apart() -> None:
    from kafka.errors import KafkaTimeoutError, NotLeaderForPartitionError

    assert dlq.is_permanent(MessageSizeTooLargeError("big"))
    assert dlq.is_permanent(ValueError("Need at least one: key or value"))
    assert not dlq.is_permanent(KafkaTimeoutError("later"))
    assert not dlq.is_permanent(NotLeaderForPartitionError())


# ---- records the Kafka client cannot parse (the service side: test_stream_publishing) ------


class HalfReadFetch:
    """kafka-python's PartitionRecords as left by a record it failed to parse."""

    def __init__(self, tp: Any, next_fetch_offset: int, fetch_offset: int | None = None) -> None:
        self.topic_partition = tp
        self.next_fetch_offset = next_fetch_offset
        self.fetch_offset = next_fetch_offset if fetch_offset is None else fetch_offset
        self.drained = False

    def drain(self) -> None:
        self.drained = True


class WedgedConsumer:
    """kafka-python's consumer as `unreadable_record` sees it: positioned at offset 7 of
    partition 0, with a half-read fetch (`_fetcher`) set by each test."""

    def __init__(self, tp: Any) -> None:
        self.tp = tp
        self.at = 7
        self.seeks: list[tuple[Any, int]] = []
        self._fetcher = type("Fetcher", (), {"_next_partition_records": None})()

    def assignment(self) -> set[Any]:
        return {self.tp}

    def position(self, tp: Any, timeout_ms: int | None = None) -> int:
        return self.at

    def seek(self, tp: Any, offset: int) -> None:
        self.seeks.append((tp, offset))
        self.at = offset


def test_nothing_is_skipped_when_the_consumer_is_not_at_the_failed_record() -> None:
    tp = TopicPartition("in", 0)
    consumer = WedgedConsumer(tp)
    stale = HalfReadFetch(tp, 5)  # position is 7
    consumer._fetcher._next_partition_records = stale
    assert unreadable_record(consumer, CorruptRecordError("x")) is None
    assert stale.drained  # dropped, so the next poll fetches anew instead of spinning
    consumer._fetcher._next_partition_records = HalfReadFetch(tp, 9, 7)  # failed after it
    assert unreadable_record(consumer, CorruptRecordError("x")) is None
    consumer._fetcher._next_partition_records = HalfReadFetch(tp, 5, 3)  # stale, began before
    assert unreadable_record(consumer, CorruptRecordError("x")) is None
    consumer._fetcher._next_partition_records = HalfReadFetch(tp, 7)
    assert unreadable_record(consumer, KafkaTimeoutError("broker away")) is None
    assert consumer.seeks == []


def test_a_record_after_good_ones_of_its_fetch_is_found_too() -> None:
    tp = TopicPartition("in", 0)
    consumer = WedgedConsumer(tp)  # at 7: the fetch began at 4 and gave 4, 5 and 6
    consumer._fetcher._next_partition_records = HalfReadFetch(tp, 7, 4)
    found = unreadable_record(consumer, CorruptRecordError("x"))
    assert found is not None and found[1].offset == 7 and consumer.seeks == [(tp, 8)]


def test_the_rest_of_a_batch_the_client_cannot_read_past_is_unreadable_too() -> None:
    tp = TopicPartition("in", 0)
    consumer = WedgedConsumer(tp)
    consumer._fetcher._next_partition_records = HalfReadFetch(tp, 5, 7)  # 5 broke the batch
    found = unreadable_record(consumer, CorruptRecordError("x"))
    assert found is not None and found[1].offset == 7 and consumer.seeks == [(tp, 8)]
    assert "cannot read past offset 5" in found[1].error


class FakeTransactionManager:
    """kafka-python 3.0's classification: every non-retriable error fatal (idempotent)."""

    ERROR_CLASS_FATAL = "FATAL"
    ERROR_CLASS_NEEDS_EPOCH_BUMP = "NEEDS_EPOCH_BUMP"
    ERROR_CLASS_NEEDS_PRODUCER_ID_RESET = "NEEDS_PRODUCER_ID_RESET"

    def __init__(self, transactional: bool = False) -> None:
        self.transactional = transactional

    def is_transactional(self) -> bool:
        return self.transactional

    def _supports_epoch_bump(self) -> bool:
        return True

    def classify_batch_error(self, error: Any, batch: Any, log_start_offset: int = -1) -> str:
        return self.ERROR_CLASS_FATAL


def test_a_refused_record_no_longer_makes_the_idempotent_producer_fatal() -> None:
    from kafka.errors import ClusterAuthorizationFailedError, InvalidRecordError

    from stream.producer_errors import tolerate_refused_records

    producer = type("Producer", (), {"_transaction_manager": FakeTransactionManager()})()
    assert tolerate_refused_records(producer)
    classify = producer._transaction_manager.classify_batch_error
    assert classify(MessageSizeTooLargeError(), None) == "NEEDS_EPOCH_BUMP"
    assert classify(InvalidRecordError, None) == "NEEDS_EPOCH_BUMP"
    assert classify(ClusterAuthorizationFailedError(), None) == "FATAL"  # still fatal
    transactional = type("P", (), {"_transaction_manager": FakeTransactionManager(True)})()
    assert not tolerate_refused_records(transactional)
