"""KafkaPublisher without a broker (kafka-python's producer replaced by a recorder): records
without an integer id are published keyless for the classifier to dead-letter, and the
published counter moves with each acknowledgement, not once per flush."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from common.kafka_settings import KafkaConnection
from producers import publisher
from producers.messages import RawRecord
from producers.metrics import ProducerMetrics, Source


class AckedFuture:
    def add_callback(self, callback: Any, *args: Any) -> AckedFuture:
        callback(*args, None)  # acknowledged at once
        return self

    def add_errback(self, _errback: Any) -> AckedFuture:
        return self


class RecordingProducer:
    def __init__(self, **_config: Any) -> None:
        self.sent: list[tuple[bytes | None, bytes]] = []

    def send(self, _topic: str, key: bytes | None, value: bytes, headers: Any) -> AckedFuture:
        self.sent.append((key, value))
        return AckedFuture()

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


@pytest.fixture
def sink(monkeypatch: pytest.MonkeyPatch) -> publisher.KafkaPublisher:
    monkeypatch.setattr(publisher, "KafkaProducer", RecordingProducer)
    metrics = ProducerMetrics(CollectorRegistry())
    return publisher.KafkaPublisher(KafkaConnection(bootstrap_servers="x:1"), "topic", metrics)


def _published(sink: publisher.KafkaPublisher) -> float | None:
    registry = sink._metrics.registry
    return registry.get_sample_value(
        "stocksent_producer_messages_published_total", {"source": "replay"}
    )


def test_keys_are_ids_and_records_without_one_go_keyless() -> None:
    assert publisher.record_key({"id": 42}) == b"42"
    # the classifier's rule: a numeric string is no id (it dead-letters it as id_not_integer)
    assert publisher.record_key({"id": "42"}) is None
    assert publisher.record_key({"id": "abc"}) is None
    assert publisher.record_key({"body": "no id"}) is None
    assert publisher.record_key(RawRecord(b"{oops", "f:1")) is None
    assert publisher.record_value(RawRecord(b"{oops", "f:1")) == b"{oops"


def test_a_record_without_an_integer_id_does_not_stop_the_producer(
    sink: publisher.KafkaPublisher,
) -> None:
    for message in ({"id": 1, "body": "a"}, {"id": "x1", "body": "b"}, RawRecord(b"[1]", "f:3")):
        sink.send(message, source=Source.REPLAY, symbol=None, fetched_at="t")
    assert sink.flush() == 3
    sent = sink._producer.sent  # type: ignore[attr-defined]
    assert [key for key, _ in sent] == [b"1", None, None]
    assert sent[2][1] == b"[1]"


def test_published_counter_moves_with_each_ack_before_any_flush(
    sink: publisher.KafkaPublisher,
) -> None:
    for ident in range(3):
        sink.send({"id": ident + 1}, source=Source.REPLAY, symbol=None, fetched_at="t")
    assert _published(sink) == 3  # no flush yet
    sink.flush()
    assert _published(sink) == 3  # and not counted twice
