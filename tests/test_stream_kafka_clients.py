"""The adapters over kafka-python convert at the edge: offsets to OffsetAndMetadata, the
commit callback's (offsets, response) to one error or None, our rebalance listener to the
client's listener class. (The real clients against a broker: tests/integration.)"""

from __future__ import annotations

from typing import Any

from kafka import ConsumerRebalanceListener, OffsetAndMetadata, TopicPartition

from stream.kafka_clients import KafkaConsumerClient, KafkaProducerClient

TP = TopicPartition("in", 0)


class Recorder:
    """Stands for a kafka-python client: notes each call and its arguments."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append((name, args, kwargs))
            return None

        return call


def test_commits_carry_offsets_and_metadata_and_answer_with_the_error_or_none() -> None:
    client = Recorder()
    consumer = KafkaConsumerClient(client)  # type: ignore[arg-type]
    answers: list[Exception | None] = []
    consumer.commit_async({TP: 7}, answers.append)
    [(name, (offsets,), kwargs)] = client.calls
    assert name == "commit_async"
    callback = kwargs["callback"]
    assert offsets == {TP: OffsetAndMetadata(7, "", -1)}
    callback(offsets, {TP: OffsetAndMetadata(7, "", -1)})  # kafka-python's success
    failure = RuntimeError("rebalance in progress")
    callback(offsets, failure)
    assert answers == [None, failure]


def test_the_rebalance_listener_is_the_clients_own_class_and_passes_sets_on() -> None:
    client = Recorder()
    heard: list[tuple[str, set[Any]]] = []

    class Listener:
        def on_revoked(self, partitions: set[Any]) -> None:
            heard.append(("revoked", partitions))

        def on_assigned(self, partitions: set[Any]) -> None:
            heard.append(("assigned", partitions))

    KafkaConsumerClient(client).subscribe("in", Listener())  # type: ignore[arg-type]
    [(name, args, kwargs)] = client.calls
    assert (name, args) == ("subscribe", (["in"],))
    wrapped = kwargs["listener"]
    assert isinstance(wrapped, ConsumerRebalanceListener)
    wrapped.on_partitions_assigned([TP])
    wrapped.on_partitions_revoked([TP])
    assert heard == [("assigned", {TP}), ("revoked", {TP})]


def test_transaction_offsets_carry_metadata_and_sends_pass_headers_and_partition() -> None:
    client = Recorder()
    producer = KafkaProducerClient(client)  # type: ignore[arg-type]
    producer.send_offsets_to_transaction({TP: 3}, "group-metadata")
    producer.send("out", b"v", b"k", [("h", b"1")], partition=2)
    assert client.calls == [
        ("send_offsets_to_transaction", ({TP: OffsetAndMetadata(3, "", -1)}, "group-metadata"), {}),
        ("send", ("out",), {"value": b"v", "key": b"k", "headers": [("h", b"1")], "partition": 2}),
    ]
