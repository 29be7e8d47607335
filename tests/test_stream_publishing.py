"""The publish step in the running service (in-memory Kafka twin): the output key is the
message id; what Kafka would refuse as it is gets dead-lettered all the same; a record the
broker refuses for good steps down output -> DLQ copy -> minimal copy -> skipped, never
retried forever; a record the client cannot parse is skipped past and dead-lettered."""

from __future__ import annotations

from typing import Any

import orjson
from kafka.errors import MessageSizeTooLargeError

from stream import dead_letter as dlq
from stream.memory_kafka import TopicPartition
from tests.classifier_support import TwinClassifier

GOOD = orjson.dumps({"id": 4242, "body": "$SPY calls"})
IN_0 = TopicPartition("in", 0)


def test_the_output_key_is_the_message_id_whatever_the_input_key_was() -> None:
    c = TwinClassifier.started()
    for key in (None, b"not-the-id", b"4242"):
        c.broker.append("in", 0, GOOD, key)
    c.settle()
    assert [r.key for r in c.broker.records("out")] == [b"4242"] * 3


def test_records_kafka_would_refuse_as_they_are_are_dead_lettered_all_the_same() -> None:
    c = TwinClassifier.started()
    c.broker.append("in", 0, None, None)  # neither key nor value
    c.broker.append("in", 0, b"junk", b"1", [("h", None)])  # type: ignore[list-item]
    c.broker.append("in", 0, GOOD, None)
    c.settle()
    assert [d[dlq.REASON] for d in c.letters()] == [b"null_value", b"invalid_json"]
    assert c.committed() == {0: 3}
    assert c.sample("messages_consumed_total") == 3


def refuse_big_dlq_values(topic: str, key: Any, value: Any, headers: Any) -> Exception | None:
    """A DLQ topic whose max.message.bytes is below what the service assumes."""
    if topic == "dlq" and value is not None and len(value) > 10:
        return MessageSizeTooLargeError("over the topic's max.message.bytes")
    return None


def test_a_dlq_copy_the_broker_refuses_for_good_goes_minimal_instead_of_retried_forever() -> None:
    c = TwinClassifier.started()
    c.producer.refuse = refuse_big_dlq_values
    c.produce(b"x" * 50, b"junk")
    c.settle()
    assert c.consumer.seeks == [(IN_0, 0)]  # the batch was read again once
    letters = c.letters()
    # the first reading's good copy of offset 1 was acknowledged too: at least once
    assert [(d[dlq.SOURCE_OFFSET], dlq.MINIMAL in d) for d in letters] == [
        (b"1", False),
        (b"0", True),
        (b"1", False),
    ]
    assert c.committed() == {0: 2}
    assert c.sample("dead_letters_total", {"reason": "invalid_json"}) == 2
    assert c.sample("errors_total", {"stage": "produce"}) == 1


def test_a_record_whose_every_copy_is_refused_is_skipped_and_counted() -> None:
    c = TwinClassifier.started()

    def refuse_all(topic: str, *_: Any) -> Exception | None:
        return MessageSizeTooLargeError("no") if topic == "dlq" else None

    c.producer.refuse = refuse_all
    c.produce(b"junk")
    c.settle()
    assert c.consumer.seeks == [(IN_0, 0), (IN_0, 0)]  # full copy refused, then minimal
    assert c.broker.records("dlq") == []
    assert c.committed() == {0: 1}  # then skipped
    assert c.sample("records_skipped_total", {"reason": "invalid_json"}) == 1
    assert c.sample("dead_letters_total", {"reason": "invalid_json"}) == 0
    assert c.sample("messages_consumed_total") == 1


def test_an_output_the_broker_refuses_for_good_is_dead_lettered() -> None:
    c = TwinClassifier.started()

    def refuse_outputs(topic: str, *_: Any) -> Exception | None:
        return MessageSizeTooLargeError("no") if topic == "out" else None

    c.producer.refuse = refuse_outputs
    c.broker.append("in", 0, GOOD, b"4242")
    c.settle()
    assert c.broker.records("out") == []
    [letter] = c.broker.records("dlq")
    assert letter.value == GOOD and letter.key == b"4242"
    assert dict(letter.headers)[dlq.REASON] == b"output_refused"
    assert b"MessageSizeTooLargeError" in dict(letter.headers)[dlq.DETAIL]
    assert c.committed() == {0: 1}
    assert c.sample("dead_letters_total", {"reason": "output_refused"}) == 1


def test_a_record_the_client_cannot_parse_is_skipped_past_and_dead_lettered() -> None:
    c = TwinClassifier.started()
    c.produce(GOOD, GOOD, GOOD)
    c.broker.make_unparsable("in", 0, 1)
    c.settle()
    [letter] = c.letters()
    assert letter[dlq.REASON] == b"unreadable" and letter[dlq.SOURCE_OFFSET] == b"1"
    assert letter[dlq.DETAIL].startswith(b"CorruptRecordError")
    sources = [orjson.loads(r.value or b"")["source"] for r in c.broker.records("out")]
    assert [source["offset"] for source in sources] == [0, 2]
    assert c.consumer.seeks == [(IN_0, 2)]
    assert c.committed() == {0: 3}
    assert c.sample("dead_letters_total", {"reason": "unreadable"}) == 1
    assert c.sample("errors_total", {"stage": "consume"}) == 1


def test_records_of_an_input_partition_added_later_are_labeled_not_refused() -> None:
    # input and output had as many partitions at start; input partition 2 came later
    c = TwinClassifier(partitions=2)
    c.service.start()
    c.broker.add_partitions("in", 1)
    c.consumer.rebalance(assign=[2])
    c.produce(GOOD, partition=2)
    c.settle()
    assert [(r.key, r.partition) for r in c.broker.records("out")] == [(b"4242", 0)]
    assert c.broker.records("dlq") == []


def test_outputs_keep_their_input_partition_when_the_topics_have_as_many() -> None:
    c = TwinClassifier.started(partitions=3)
    for partition in (0, 1, 2):
        c.broker.append("in", partition, GOOD, b"k")
    c.settle()
    assert sorted(r.partition for r in c.broker.records("out")) == [0, 1, 2]
