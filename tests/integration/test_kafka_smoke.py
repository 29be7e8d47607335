"""The local broker really behaves like Kafka: keys, headers, groups, transactions, splits."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from kafka import KafkaConsumer, KafkaProducer, OffsetAndMetadata, TopicPartition

from tests.kafka_support import drain, produce

pytestmark = pytest.mark.integration


def test_round_trip_keeps_keys_and_headers(
    kafka_bootstrap: str, make_topic: Callable[..., str]
) -> None:
    topic = make_topic("smoke")
    sent = [
        (str(i).encode(), f"value-{i}".encode(), [("source", b"test"), ("n", str(i).encode())])
        for i in range(50)
    ]
    produce(kafka_bootstrap, topic, sent)
    records = drain(kafka_bootstrap, topic, expected=50, idle_s=0.5)
    assert [(r.key, r.value, list(r.headers)) for r in records] == sent


def test_new_group_member_resumes_after_last_commit(
    kafka_bootstrap: str, make_topic: Callable[..., str], group_id: str
) -> None:
    topic = make_topic("resume")
    produce(kafka_bootstrap, topic, [(None, f"m{i}".encode(), None) for i in range(20)])
    first = KafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=7,
    )
    seen: list[bytes] = []
    deadline = time.monotonic() + 30
    while len(seen) < 7 and time.monotonic() < deadline:
        for records in first.poll(timeout_ms=500, max_records=7 - len(seen)).values():
            seen.extend(r.value for r in records)
    assert seen == [f"m{i}".encode() for i in range(7)]
    first.commit({TopicPartition(topic, 0): OffsetAndMetadata(7, "", -1)})
    first.close()

    second = KafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    rest: list[bytes] = []
    deadline = time.monotonic() + 30
    while len(rest) < 13 and time.monotonic() < deadline:
        for records in second.poll(timeout_ms=500).values():
            rest.extend(r.value for r in records)
    second.close()
    assert rest == [f"m{i}".encode() for i in range(7, 20)]


def test_committed_transaction_visible_and_aborted_one_not(
    kafka_bootstrap: str, make_topic: Callable[..., str]
) -> None:
    topic = make_topic("txn")
    producer = KafkaProducer(
        bootstrap_servers=kafka_bootstrap,
        transactional_id=f"{topic}-tx",
        acks="all",
        enable_idempotence=True,
    )
    producer.init_transactions()
    producer.begin_transaction()
    for i in range(5):
        producer.send(topic, key=b"c", value=f"committed-{i}".encode())
    producer.commit_transaction()
    producer.begin_transaction()
    for i in range(5):
        producer.send(topic, key=b"a", value=f"aborted-{i}".encode())
    producer.flush()
    producer.abort_transaction()
    producer.begin_transaction()
    producer.send(topic, key=b"c", value=b"committed-last")
    producer.commit_transaction()
    producer.close()

    committed = drain(
        kafka_bootstrap, topic, expected=6, idle_s=1.0, isolation_level="read_committed"
    )
    assert [r.value for r in committed] == [
        *(f"committed-{i}".encode() for i in range(5)),
        b"committed-last",
    ]
    everything = drain(kafka_bootstrap, topic, expected=11, idle_s=1.0)
    assert sum(r.value.startswith(b"aborted") for r in everything) == 5


def test_two_group_members_split_six_partitions(
    kafka_bootstrap: str, make_topic: Callable[..., str], group_id: str
) -> None:
    topic = make_topic("split", partitions=6)
    members = [
        KafkaConsumer(
            topic,
            bootstrap_servers=kafka_bootstrap,
            group_id=group_id,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        for _ in range(2)
    ]
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for member in members:
                member.poll(timeout_ms=200)
            assignments = [member.assignment() for member in members]
            if all(assignments) and sum(len(a) for a in assignments) == 6:
                break
        assignments = [member.assignment() for member in members]
        assert all(len(a) == 3 for a in assignments), assignments
        assert set.union(*(set(a) for a in assignments)) == {
            TopicPartition(topic, p) for p in range(6)
        }
        assert not set(assignments[0]) & set(assignments[1])
    finally:
        for member in members:
            member.close()
