"""Publish-and-commit in the running service (in-memory Kafka twin): offsets are committed
only once the batch's records are written; a batch that cannot be written is rewound, with
the batches taken after it, and read again; exactly-once makes records and offsets one
transaction; a fenced producer stops the service."""

from __future__ import annotations

import orjson
import pytest
from kafka.errors import KafkaError

from stream.memory_kafka import TopicPartition
from stream.service import FatalServiceError
from tests.classifier_support import TwinClassifier

GOOD = orjson.dumps({"id": 11, "body": "$SPY calls"})
GOOD_2 = orjson.dumps({"id": 12, "body": "$XYZ sell"})


def test_a_failed_publish_commits_nothing_rewinds_and_is_read_again() -> None:
    c = TwinClassifier.started(partitions=3)
    c.produce(GOOD, GOOD_2, partition=2)
    c.producer.broker_down = True
    c.steps()
    c.executor.complete()
    c.steps()  # the sends time out: nothing committed, the partition rewound
    assert c.committed() == {} and c.broker.records("out") == []
    assert c.consumer.seeks == [(TopicPartition("in", 2), 0)]
    assert c.sample("errors_total", {"stage": "produce"}) == 1
    assert c.sample("messages_consumed_total") == 0
    c.producer.broker_down = False
    c.settle()
    assert c.output_ids() == [11, 12]  # each once
    assert c.committed() == {2: 2}
    assert c.sample("messages_consumed_total") == 2


def test_a_failed_batch_rewinds_the_batches_taken_after_it_too() -> None:
    c = TwinClassifier.started(partitions=4, batch_size=2)
    c.produce(GOOD, GOOD_2, GOOD, partition=2)
    c.produce(GOOD_2, partition=3)
    c.steps(2)  # [p2@0, p2@1] and [p2@2, p3@0], both with the model
    assert c.executor.submitted == 2
    c.producer.broker_down = True
    c.executor.complete_all()
    c.steps()
    # the failed batch from its first offsets; the later one only where it went further
    assert c.consumer.seeks == [(TopicPartition("in", 2), 0), (TopicPartition("in", 3), 0)]
    assert c.committed() == {}
    c.producer.broker_down = False
    c.settle()
    assert sorted(c.output_ids()) == [11, 11, 12, 12]  # each record once
    assert c.committed() == {2: 3, 3: 1}


def test_exactly_once_is_one_transaction_per_batch_with_its_offsets() -> None:
    c = TwinClassifier(partitions=2, batch_size=1, processing_guarantee="exactly-once")
    c.produce(GOOD, partition=0)
    c.produce(GOOD_2, b"{}", partition=1)
    c.consumer.on_caught_up = c.service.stop
    c.service.run()  # the service's own path: it initialises the transactions itself
    assert c.producer.transactions == ["init"] + ["begin", "commit"] * 3
    assert c.consumer.commits == []  # offsets go through the transactions only
    assert c.committed() == {0: 1, 1: 2}
    assert c.output_ids() == [11, 12] and len(c.letters()) == 1
    assert c.consumer.closed and c.producer.closed


def test_a_failed_transaction_is_aborted_and_its_batch_read_again() -> None:
    c = TwinClassifier.started(processing_guarantee="exactly-once")
    c.produce(GOOD, GOOD_2)
    c.producer.broker_down = True
    c.steps()
    c.executor.complete()
    c.steps()
    assert c.producer.transactions == ["init", "begin", "abort"]
    assert c.broker.records("out") == [] and c.committed() == {}  # nothing of it is visible
    assert c.sample("errors_total", {"stage": "transaction"}) == 1
    c.producer.broker_down = False
    c.settle()
    assert c.producer.transactions[-2:] == ["begin", "commit"]
    assert c.output_ids() == [11, 12] and c.committed() == {0: 2}  # once each


def test_a_fenced_producer_stops_the_service_with_the_reason() -> None:
    c = TwinClassifier.started(processing_guarantee="exactly-once", instance_id="a")
    c.produce(GOOD)
    c.steps()
    c.executor.complete()
    c.producer.fence()
    with pytest.raises(FatalServiceError, match="--instance-id"):
        c.steps()
    assert c.broker.records("out") == [] and c.committed() == {}


def test_a_failed_final_commit_is_counted_and_the_clients_still_close() -> None:
    c = TwinClassifier.started(batch_wait_ms=60_000)
    c.produce(GOOD)
    c.steps()  # an open batch, not yet due
    c.consumer.fail_commits(KafkaError("coordinator moved"), KafkaError("still moving"))
    c.service.stop()
    c.service.finish()  # what run() does once stopped: the open batch, the final commit
    c.service.close()
    assert c.output_ids() == [11]
    assert c.committed() == {}  # its next owner reads it again: at least once
    assert c.sample("errors_total", {"stage": "commit"}) == 1  # the final one's
    assert c.consumer.closed and c.producer.closed
