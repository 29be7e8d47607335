"""The in-memory Kafka twin and the manual executor behave as the unit tests rely on."""

from __future__ import annotations

import pytest
from kafka.errors import IllegalStateError, KafkaTimeoutError, MessageSizeTooLargeError

from stream.manual_executor import ManualExecutor
from stream.memory_kafka import MemoryBroker, MemoryConsumer, MemoryProducer, TopicPartition

IN_0 = TopicPartition("in", 0)


class Heard:
    """A rebalance listener that notes what it hears."""

    def __init__(self) -> None:
        self.events: list[tuple[str, set[TopicPartition]]] = []

    def on_revoked(self, partitions: set[TopicPartition]) -> None:
        self.events.append(("revoked", partitions))

    def on_assigned(self, partitions: set[TopicPartition]) -> None:
        self.events.append(("assigned", partitions))


def test_a_transaction_writes_its_records_and_offsets_together_or_not_at_all() -> None:
    broker = MemoryBroker({"in": 1, "out": 1})
    producer = MemoryProducer(broker, transactional=True)
    with pytest.raises(IllegalStateError):
        producer.begin_transaction()  # before init_transactions
    producer.init_transactions()
    producer.begin_transaction()
    producer.send("out", b"a", b"k")
    producer.send_offsets_to_transaction({IN_0: 5}, "g")
    assert broker.records("out") == [] and broker.committed("g") == {}
    producer.abort_transaction()
    producer.begin_transaction()
    producer.send("out", b"b", b"k")
    producer.send_offsets_to_transaction({IN_0: 6}, "g")
    producer.commit_transaction()
    assert [r.value for r in broker.records("out")] == [b"b"]
    assert broker.committed("g") == {IN_0: 6}


def test_a_send_is_settled_by_the_flush_and_a_refused_one_is_not_written() -> None:
    broker = MemoryBroker({"out": 1})
    producer = MemoryProducer(broker, refuse=lambda t, k, v, h: MessageSizeTooLargeError())
    refused = producer.send("out", b"v", b"k")
    assert not refused.failed()  # not answered yet
    producer.flush()
    assert refused.failed() and broker.records("out") == []
    producer.refuse, producer.broker_down = None, True
    timed_out = producer.send("out", b"v", b"k")
    producer.flush()
    assert isinstance(timed_out.exception, KafkaTimeoutError)
    with pytest.raises(ValueError, match="Unrecognized partition"):
        producer.send("out", b"v", b"k", partition=1)


def test_a_consumer_reads_from_the_committed_offset_and_hears_rebalances_in_poll() -> None:
    broker = MemoryBroker({"in": 2})
    broker.produce("in", 0, [b"a", b"b", b"c"])
    broker.commit("g", {IN_0: 1})
    consumer, heard = MemoryConsumer(broker, "g"), Heard()
    consumer.subscribe("in", heard)
    assert heard.events == []  # heard at the first poll
    polled = consumer.poll(0, 10)
    assert [r.value for r in polled[IN_0]] == [b"b", b"c"]
    assert heard.events == [("assigned", {IN_0, TopicPartition("in", 1)})]
    consumer.rebalance(revoke=[1])
    consumer.poll(0, 10)
    assert heard.events[-1] == ("revoked", {TopicPartition("in", 1)})
    assert consumer.assignment() == {IN_0}


def test_an_asynchronous_commit_is_answered_at_the_next_poll() -> None:
    broker = MemoryBroker({"in": 1})
    consumer = MemoryConsumer(broker, "g")
    consumer.subscribe("in", Heard())
    answers: list[Exception | None] = []
    consumer.fail_commits(RuntimeError("no"))
    consumer.commit_async({IN_0: 1}, answers.append)
    consumer.commit_async({IN_0: 2}, answers.append)
    assert answers == []
    consumer.poll(0, 1)
    assert [type(a) for a in answers] == [RuntimeError, type(None)]
    assert broker.committed("g") == {IN_0: 2}


def test_the_manual_executor_runs_calls_when_told_or_when_waited_for() -> None:
    executor = ManualExecutor()
    ran: list[str] = []
    first = executor.submit(ran.append, "first")
    second = executor.submit(ran.append, "second")
    executor.complete(1)
    assert ran == ["second"] and second.done() and not first.done()
    first.result()  # waited for: it runs now
    assert ran == ["second", "first"] and executor.waited == 1
    third = executor.submit(ran.append, "third")
    executor.shutdown(cancel_futures=True)
    assert third.cancelled() and ran == ["second", "first"]
