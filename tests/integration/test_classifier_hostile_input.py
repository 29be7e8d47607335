"""Input that real upstreams send and that used to crash or wedge the classifier, on the real
broker: compressed batches of every codec, a codec the client lacks, records the client
cannot parse, records Kafka refuses to carry as they are. Each ends as an output or a DLQ
record, and the offsets move past it."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import kafka.codec
import orjson
import pytest
from kafka import KafkaConsumer, TopicPartition

from stream import dead_letter as dlq
from stream.decode import DeadLetterReason
from tests.classifier_support import (
    STAND_IN_MODEL_SPEC,
    KeywordPredictor,
    ThreadedClassifier,
    classifier_settings,
)
from tests.kafka_support import NonUtf8HeaderName, drain, produce, produce_unchecked
from tests.polling import wait_for

pytestmark = pytest.mark.integration

P = "stocksent_classifier_"
CODECS = ("gzip", "snappy", "lz4", "zstd")


def good(message_id: int, text: str = "$SPY calls") -> bytes:
    return orjson.dumps({"id": message_id, "body": text, "symbols": [{"symbol": "SPY"}]})


def committed(bootstrap: str, group: str, topic: str, partitions: int = 1) -> dict[int, int]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group)
    try:
        found = {p: consumer.committed(TopicPartition(topic, p)) for p in range(partitions)}
        return {p: -1 if offset is None else offset for p, offset in found.items()}
    finally:
        consumer.close()


def classifier(bootstrap: str, group: str, topics: tuple[str, str, str], **more: Any) -> Any:
    input_topic, output_topic, dlq_topic = topics
    settings = classifier_settings(
        bootstrap, input_topic=input_topic, output_topic=output_topic, dlq_topic=dlq_topic,
        group_id=group, model=STAND_IN_MODEL_SPEC, batch_size=32, **more,
    )  # fmt: skip
    return ThreadedClassifier(settings, KeywordPredictor())


def test_compressed_batches_of_every_codec_are_classified(
    kafka_bootstrap: str, make_topic: Callable[..., str], group_id: str
) -> None:
    topics = (make_topic("in", 1), make_topic("out", 1), make_topic("dlq", 1))
    expected = []
    for n, codec in enumerate(CODECS):  # each codec's records in batches of their own
        ids = [1_000 * (n + 1) + i for i in range(40)]
        records = [(str(i).encode(), good(i), [("codec", codec.encode())]) for i in ids]
        records.append((b"junk", b"{not json", [("codec", codec.encode())]))  # bad, compressed
        produce(kafka_bootstrap, topics[0], records, compression_type=codec)
        expected += ids
    with classifier(kafka_bootstrap, group_id, topics) as running:
        outputs = drain(kafka_bootstrap, topics[1], expected=len(expected), timeout_s=60)
        letters = drain(kafka_bootstrap, topics[2], expected=len(CODECS), timeout_s=30)
        wait_for(
            lambda: committed(kafka_bootstrap, group_id, topics[0]) == {0: 41 * len(CODECS)},
            20,
            "every offset committed",
        )
    assert sorted(orjson.loads(r.value)["id"] for r in outputs) == sorted(expected)
    assert sorted(dict(r.headers)["codec"] for r in letters) == sorted(c.encode() for c in CODECS)
    assert {dict(r.headers)[dlq.REASON] for r in letters} == {b"invalid_json"}
    assert running.sample(P + "errors_total", {"stage": "consume"}) == 0


def test_a_batch_in_a_codec_the_client_lacks_is_dead_lettered_and_passed(
    kafka_bootstrap: str,
    make_topic: Callable[..., str],
    group_id: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    topics = (make_topic("in", 1), make_topic("out", 1), make_topic("dlq", 1))
    produce(kafka_bootstrap, topics[0], [(b"%d" % i, good(i), []) for i in (1, 2, 3)])
    produce(
        kafka_bootstrap, topics[0], [(b"%d" % i, good(i), []) for i in (4, 5, 6, 7)],
        compression_type="lz4",
    )  # fmt: skip
    produce(kafka_bootstrap, topics[0], [(b"%d" % i, good(i), []) for i in (8, 9)])
    # as before the codecs were dependencies: kafka-python finds no lz4 library
    monkeypatch.setattr(kafka.codec, "lz4", None)
    with classifier(kafka_bootstrap, group_id, topics) as running:
        outputs = drain(kafka_bootstrap, topics[1], expected=5, timeout_s=60)
        letters = drain(kafka_bootstrap, topics[2], expected=4, timeout_s=30)
        wait_for(lambda: committed(kafka_bootstrap, group_id, topics[0]) == {0: 9}, 20, "commit")
        assert running.sample(P + "dead_letters_total", {"reason": "unreadable"}) == 4
    assert sorted(orjson.loads(r.value)["id"] for r in outputs) == [1, 2, 3, 8, 9]
    headers = [dict(r.headers) for r in letters]
    assert [h[dlq.SOURCE_OFFSET] for h in headers] == [b"3", b"4", b"5", b"6"]
    assert all(h[dlq.REASON] == b"unreadable" for h in headers)
    assert all(b"UnsupportedCodecError" in h[dlq.DETAIL] for h in headers)
    assert all(r.value is None and r.key == b"" for r in letters)


@pytest.mark.parametrize("guarantee", ["at-least-once", "exactly-once"])
def test_records_other_clients_write_end_in_the_dlq_or_the_output_keyed_by_id(
    guarantee: str, kafka_bootstrap: str, make_topic: Callable[..., str], group_id: str
) -> None:
    topics = (make_topic("in", 1), make_topic("out", 1), make_topic("dlq", 1))
    produce_unchecked(  # one batch, offsets 0-5
        kafka_bootstrap,
        topics[0],
        [
            (b"1", good(1), []),
            (None, None, [("kind", b"neither key nor value")]),
            (b"2", b"{junk", [("kind", b"null header value"), ("empty", None)]),
            (None, good(4), [("kind", b"null key")]),
            (b"not-the-id", good(5), [("kind", b"foreign key")]),
            (b"6", good(6), [("kind", b"null header value, good"), ("x", None)]),
        ],
    )
    bad_name = NonUtf8HeaderName(b"\xff\xfe-name")
    produce_unchecked(  # offsets 6-7: the client cannot parse 6, nor so 7 after it
        kafka_bootstrap,
        topics[0],
        [(b"3", good(3), [(bad_name, b"v")]), (b"7", good(7), [])],
    )
    produce_unchecked(kafka_bootstrap, topics[0], [(b"8", good(8), [])])  # offset 8
    isolation = "read_committed" if guarantee == "exactly-once" else "read_uncommitted"
    with classifier(
        kafka_bootstrap, group_id, topics, processing_guarantee=guarantee, instance_id=group_id
    ) as running:
        outputs = drain(
            kafka_bootstrap, topics[1], expected=5, timeout_s=60, isolation_level=isolation
        )
        letters = drain(
            kafka_bootstrap, topics[2], expected=4, timeout_s=30, isolation_level=isolation
        )
        wait_for(lambda: committed(kafka_bootstrap, group_id, topics[0]) == {0: 9}, 20, "commit")
        assert running.sample(P + "messages_consumed_total") == 9
    assert [(r.key, orjson.loads(r.value)["id"]) for r in outputs] == [
        (b"1", 1), (b"4", 4), (b"5", 5), (b"6", 6), (b"8", 8),
    ]  # fmt: skip
    by_offset = {int(dict(r.headers)[dlq.SOURCE_OFFSET]): r for r in letters}
    assert sorted(by_offset) == [1, 2, 6, 7]
    tombstone = by_offset[1]
    assert tombstone.key == b"" and tombstone.value is None
    assert dict(tombstone.headers)[dlq.KEY_WAS_NULL] == b"true"
    assert dict(tombstone.headers)[dlq.REASON] == b"null_value"
    junk = dict(by_offset[2].headers)
    assert by_offset[2].value == b"{junk" and junk["empty"] == b""
    assert junk[dlq.NULL_HEADER_VALUES] == b"1" and junk[dlq.REASON] == b"invalid_json"
    unreadable = dict(by_offset[6].headers)
    assert unreadable[dlq.REASON] == b"unreadable"
    assert b"CorruptRecordError" in unreadable[dlq.DETAIL]
    after = dict(by_offset[7].headers)  # the client fails on 6 before it gets to 7
    assert after[dlq.REASON] == b"unreadable" and b"UnicodeDecodeError" in after[dlq.DETAIL]


LIMIT = "300000"  # above the producer's 256 KiB batches, so only a big record exceeds it


@pytest.mark.parametrize("guarantee", ["at-least-once", "exactly-once"])
def test_what_the_topics_would_refuse_is_fitted_or_sent_down_not_retried_forever(
    guarantee: str, kafka_bootstrap: str, make_topic: Callable[..., str], group_id: str
) -> None:
    # a compacted DLQ topic (it refuses a null key) and an output topic that take 300,000
    # bytes a record (Kafka's default is 1 MiB)
    dlq_topic = make_topic("dlq", 1, **{"cleanup.policy": "compact", "max.message.bytes": LIMIT})
    topics = (make_topic("in", 1), make_topic("out", 1, **{"max.message.bytes": LIMIT}), dlq_topic)
    records: list[tuple[bytes | None, bytes, list[Any]]] = [
        (b"%d" % i, good(i), []) for i in range(1, 40)
    ]
    records[5:5] = [(None, b"{junk", []), (b"big", b"{" * 400_000, [])]
    big_output = good(4000, "bull " * 70_000)  # its labeled record is ~350 KB
    refused_output = guarantee == "at-least-once"
    if refused_output:  # see README: kafka-python's transactional producer cannot take it
        records.insert(20, (b"4000", big_output, []))
    produce(kafka_bootstrap, topics[0], records)
    started = time.monotonic()
    with classifier(
        kafka_bootstrap, group_id, topics, processing_guarantee=guarantee,
        instance_id=group_id, max_message_bytes=1_000_000,
    ) as running:  # fmt: skip
        wait_for(
            lambda: committed(kafka_bootstrap, group_id, topics[0]) == {0: len(records)},
            30,
            "every offset committed",
        )
        settled_s = time.monotonic() - started
        isolation = "read_committed" if guarantee == "exactly-once" else "read_uncommitted"
        letters = drain(kafka_bootstrap, topics[2], isolation_level=isolation, timeout_s=30)
        outputs = drain(kafka_bootstrap, topics[1], isolation_level=isolation, timeout_s=30)
        assert running.sample(P + "dead_letters_total", {"reason": "invalid_json"}) == 2
        assert sum(running.sample(P + "records_skipped_total", {"reason": r.value})
                   for r in DeadLetterReason) == 0  # fmt: skip
    by_key = {r.key: r for r in letters}
    assert sorted(by_key) == sorted([b"", b"big", *([b"4000"] if refused_output else [])])
    null_key = dict(by_key[b""].headers)
    assert null_key[dlq.KEY_WAS_NULL] == b"true" and by_key[b""].value == b"{junk"
    big = by_key[b"big"]
    assert dict(big.headers)[dlq.TRUNCATED_FROM] == b"400000"
    assert big.value is not None and 250_000 < len(big.value) < int(LIMIT)
    if refused_output:
        refused = by_key[b"4000"]
        assert dict(refused.headers)[dlq.REASON] == b"output_refused"
        assert refused.value is not None and big_output.startswith(refused.value)
    # every other good record labeled: none was sent down for another's refusal (at least
    # once: the batch of the refused output was published again)
    ids = sorted(orjson.loads(r.value)["id"] for r in outputs)
    assert sorted(set(ids)) == list(range(1, 40))
    assert refused_output or ids == list(range(1, 40))
    print(f"\n{guarantee}: fitted, refused and sent down; all committed in {settled_s:.1f}s")
