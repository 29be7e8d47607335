"""The DLQ write never fails on any input: what Kafka refuses is replaced or cut (and said so),
a copy the broker refuses for good goes minimal, then is skipped (counted); the output key is
the message id whatever the input key was; records the client cannot parse are skipped past
and dead-lettered. In-memory fakes here; the real broker in tests/integration."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest
from kafka.errors import CorruptRecordError, KafkaTimeoutError, MessageSizeTooLargeError
from kafka.record.default_records import DefaultRecordBatchBuilder
from prometheus_client import CollectorRegistry

from stream import dead_letter as dlq
from stream.decode import DeadLetterReason
from stream.metrics import ClassifierMetrics
from stream.service import ClassifierService
from stream.unreadable import unreadable_record
from tests.classifier_support import (
    FakeConsumer,
    FakeProducer,
    FakeRecord,
    FakeTopicPartition,
    KeywordPredictor,
    classifier_settings,
    fake_records,
)

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
    FakeProducer().send("dlq", value=d.value, key=d.key, headers=d.headers)  # raises as Kafka
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


# ---- in the service -----------------------------------------------------------------------


def service(consumer: FakeConsumer, producer: FakeProducer) -> tuple[ClassifierService, Any]:
    settings = classifier_settings(
        "fake:9092", input_topic="in", output_topic="out", dlq_topic="dlq",
        batch_size=100, batch_wait_ms=0, inference_workers=1,
    )  # fmt: skip
    registry = CollectorRegistry()
    metrics = ClassifierMetrics(registry, settings.symbols)
    svc = ClassifierService(settings, KeywordPredictor(), metrics, consumer, producer)
    svc.consumer.subscribe(["in"], listener=None)
    return svc, registry


def run_until_idle(svc: ClassifierService, steps: int = 20) -> None:
    """Steps at least `steps` times, then until every queued poll is taken, published and
    committed."""
    deadline = time.monotonic() + 10
    for _ in range(steps):
        svc.step()
        time.sleep(0.002)  # lets the inference thread score what was taken
    while svc.consumer.polls or svc._in_flight or len(svc.batcher):
        assert time.monotonic() < deadline, "the loop did not settle"
        svc.step()


def records(values: list[tuple[bytes | None, bytes | None, list[Any]]], first: int = 0) -> Any:
    tp = FakeTopicPartition("in", 0)
    return {
        tp: [
            FakeRecord("in", 0, first + i, key, value, headers, 1_700_000_000_000)
            for i, (key, value, headers) in enumerate(values)
        ]
    }


GOOD = orjson.dumps({"id": 4242, "body": "$SPY calls"})


class LogConsumer(FakeConsumer):
    """One partition's log, read from a position that `seek` moves, as a broker serves it."""

    def __init__(self, log: dict[Any, list[FakeRecord]]) -> None:
        [(tp, records)] = log.items()
        super().__init__(partitions={tp})
        self.tp, self.log, self.at = tp, records, records[0].offset

    def poll(self, timeout_ms: int = 0, max_records: int | None = None) -> dict[Any, Any]:
        fresh = [r for r in self.log if r.offset >= self.at]
        if not fresh:
            return {}
        self.at = fresh[-1].offset + 1
        return {self.tp: fresh}

    def seek(self, tp: Any, offset: int) -> None:
        super().seek(tp, offset)
        self.at = offset


def test_the_output_key_is_the_message_id_whatever_the_input_key_was() -> None:
    consumer = FakeConsumer(
        polls=[records([(None, GOOD, []), (b"not-the-id", GOOD, []), (b"4242", GOOD, [])])]
    )
    producer = FakeProducer()
    svc, _ = service(consumer, producer)
    run_until_idle(svc)
    assert [key for topic, key, _, _ in producer.sent if topic == "out"] == [b"4242"] * 3


def test_records_kafka_would_refuse_as_they_are_are_dead_lettered_all_the_same() -> None:
    consumer = FakeConsumer(
        polls=[records([(None, None, []), (b"1", b"junk", [("h", None)]), (None, GOOD, [])])]
    )
    producer = FakeProducer()
    svc, registry = service(consumer, producer)
    run_until_idle(svc)
    letters = [s for s in producer.sent if s[0] == "dlq"]
    assert [dict(h)[dlq.REASON] for *_, h in letters] == [b"null_value", b"invalid_json"]
    assert [tp.partition for c in consumer.commits for tp in c] == [0]
    assert consumer.commits[-1][FakeTopicPartition("in", 0)].offset == 3
    assert registry.get_sample_value(P + "messages_consumed_total") == 3


def refuse_big_dlq_values(topic: str, key: Any, value: Any, headers: Any) -> Exception | None:
    """A DLQ topic whose max.message.bytes is below what the service assumes."""
    if topic == "dlq" and value is not None and len(value) > 10:
        return MessageSizeTooLargeError("over the topic's max.message.bytes")
    return None


def test_a_dlq_copy_the_broker_refuses_for_good_goes_minimal_instead_of_retried_forever(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("stream.service.RETRY_BACKOFF_S", 0.0)
    tp = FakeTopicPartition("in", 0)
    consumer = LogConsumer(records([(b"1", b"x" * 50, []), (b"2", b"junk", [])], first=10))
    producer = FakeProducer(refuse=refuse_big_dlq_values)
    svc, registry = service(consumer, producer)
    run_until_idle(svc)
    assert consumer.seeks == [(tp, 10)]
    letters = [dict(h) for topic, _, _, h in producer.sent if topic == "dlq"]
    # the first read's good copy of offset 11 was acknowledged too: at least once
    assert [(d[dlq.SOURCE_OFFSET], dlq.MINIMAL in d) for d in letters] == [
        (b"11", False),
        (b"10", True),
        (b"11", False),
    ]
    assert consumer.commits[-1][tp].offset == 12
    assert registry.get_sample_value(P + "dead_letters_total", {"reason": "invalid_json"}) == 2
    assert not svc._refused  # forgotten once committed


def test_a_record_whose_every_copy_is_refused_is_skipped_and_counted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("stream.service.RETRY_BACKOFF_S", 0.0)
    tp = FakeTopicPartition("in", 0)
    consumer = LogConsumer(records([(b"1", b"junk", [])], first=0))

    def refuse_all(topic: str, *_: Any) -> Exception | None:
        return MessageSizeTooLargeError("no") if topic == "dlq" else None

    producer = FakeProducer(refuse=refuse_all)
    svc, registry = service(consumer, producer)
    run_until_idle(svc, steps=30)
    assert consumer.seeks == [(tp, 0), (tp, 0)]  # full copy refused, then minimal: then skip
    assert consumer.commits[-1][tp].offset == 1
    assert registry.get_sample_value(P + "records_skipped_total", {"reason": "invalid_json"}) == 1
    assert registry.get_sample_value(P + "dead_letters_total", {"reason": "invalid_json"}) == 0
    assert registry.get_sample_value(P + "messages_consumed_total") == 1


def test_an_output_the_broker_refuses_for_good_is_dead_lettered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("stream.service.RETRY_BACKOFF_S", 0.0)
    tp = FakeTopicPartition("in", 0)
    consumer = LogConsumer(records([(b"4242", GOOD, [])], first=0))

    def refuse_outputs(topic: str, *_: Any) -> Exception | None:
        return MessageSizeTooLargeError("no") if topic == "out" else None

    producer = FakeProducer(refuse=refuse_outputs)
    svc, _ = service(consumer, producer)
    run_until_idle(svc)
    [(_, key, value, headers)] = [s for s in producer.sent if s[0] == "dlq"]
    assert value == GOOD and key == b"4242"
    assert dict(headers)[dlq.REASON] == b"output_refused"
    assert b"MessageSizeTooLargeError" in dict(headers)[dlq.DETAIL]
    assert consumer.commits[-1][tp].offset == 1


class HalfReadFetch:
    """kafka-python's PartitionRecords as left by a record it failed to parse."""

    def __init__(self, tp: Any, next_fetch_offset: int, fetch_offset: int | None = None) -> None:
        self.topic_partition = tp
        self.next_fetch_offset = next_fetch_offset
        self.fetch_offset = next_fetch_offset if fetch_offset is None else fetch_offset
        self.drained = False

    def drain(self) -> None:
        self.drained = True


class WedgedConsumer(FakeConsumer):
    """Raises CorruptRecordError at offset 7 of partition 0 until it is sought past it."""

    def __init__(self, tp: Any) -> None:
        super().__init__(partitions={tp})
        self.tp = tp
        self.at = 7
        self._fetcher = type("Fetcher", (), {"_next_partition_records": None})()

    def poll(self, timeout_ms: int = 0, max_records: int | None = None) -> dict[Any, Any]:
        if self.at == 7:
            self._fetcher._next_partition_records = HalfReadFetch(self.tp, 7)
            raise CorruptRecordError("Found invalid record structure: UnicodeDecodeError(...)")
        if self.at == 8:
            self.at = 9
            return fake_records("in", 0, [GOOD], first_offset=8)
        return {}

    def position(self, tp: Any, timeout_ms: int | None = None) -> int:
        return self.at

    def seek(self, tp: Any, offset: int) -> None:
        super().seek(tp, offset)
        self.at = offset


def test_a_record_the_client_cannot_parse_is_skipped_past_and_dead_lettered() -> None:
    tp = FakeTopicPartition("in", 0)
    consumer = WedgedConsumer(tp)
    producer = FakeProducer()
    svc, registry = service(consumer, producer)
    run_until_idle(svc)
    assert consumer.seeks == [(tp, 8)]
    [letter] = [dict(h) for topic, _, _, h in producer.sent if topic == "dlq"]
    assert letter[dlq.REASON] == b"unreadable" and letter[dlq.SOURCE_OFFSET] == b"7"
    assert letter[dlq.DETAIL].startswith(b"CorruptRecordError")
    assert [k for t, k, _, _ in producer.sent if t == "out"] == [b"4242"]
    assert consumer.commits[-1][tp].offset == 9
    assert registry.get_sample_value(P + "dead_letters_total", {"reason": "unreadable"}) == 1


def test_nothing_is_skipped_when_the_consumer_is_not_at_the_failed_record() -> None:
    tp = FakeTopicPartition("in", 0)
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
    tp = FakeTopicPartition("in", 0)
    consumer = WedgedConsumer(tp)  # at 7: the fetch began at 4 and gave 4, 5 and 6
    consumer._fetcher._next_partition_records = HalfReadFetch(tp, 7, 4)
    found = unreadable_record(consumer, CorruptRecordError("x"))
    assert found is not None and found[1].offset == 7 and consumer.seeks == [(tp, 8)]


def test_the_rest_of_a_batch_the_client_cannot_read_past_is_unreadable_too() -> None:
    tp = FakeTopicPartition("in", 0)
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


def test_a_stall_while_no_broker_can_be_reached_is_not_reported_as_stuck() -> None:
    svc, _ = service(FakeConsumer(), FakeProducer())
    svc.liveness.stall_timeout_s = 0.0
    time.sleep(0.01)
    assert not svc.health()[0]  # the fake's connection state is unknown: stuck
    net = type("Net", (), {"cluster": type("C", (), {"brokers": lambda self: [
        type("B", (), {"node_id": 1})()]})(), "connected": lambda self, node: False})()  # fmt: skip
    svc.consumer._client = net  # type: ignore[attr-defined]
    alive, why = svc.health()
    assert alive and why.startswith("waiting for a broker")


def test_records_of_an_input_partition_added_later_are_labeled_not_refused() -> None:
    # input and output had 6 partitions at start; input partition 7 came later
    consumer = FakeConsumer(polls=[fake_records("in", 7, [GOOD])])
    producer = FakeProducer()
    partition_checked = producer.send

    def send(topic: str, value: Any = None, key: Any = None, **more: Any) -> Any:
        if more.get("partition") is not None and more["partition"] not in range(6):
            raise ValueError(f"Unrecognized partition {more['partition']} for topic {topic}")
        return partition_checked(topic, value=value, key=key, **more)

    producer.send = send  # type: ignore[method-assign]
    svc, _ = service(consumer, producer)
    svc._keep_partition = svc._same_partition_counts()
    assert svc._keep_partition
    run_until_idle(svc)
    assert [(t, k) for t, k, _, _ in producer.sent] == [("out", b"4242")]
