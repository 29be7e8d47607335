"""Helpers for tests that talk to the real broker: topics, producing and draining."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.consumer.fetcher import ConsumerRecord

from common.kafka_settings import KafkaConnection
from common.topic_admin import ensure_topics
from stocksent.local_kafka import free_port_pair

__all__ = [
    "NonUtf8HeaderName",
    "create_topic",
    "drain",
    "free_port_pair",
    "produce",
    "produce_unchecked",
    "unique_name",
]


def unique_name(prefix: str) -> str:
    """A topic or group name no other test uses."""
    return f"{prefix}.{uuid.uuid4().hex[:10]}"


def create_topic(
    bootstrap: str, name: str, partitions: int = 1, configs: dict[str, str] | None = None
) -> str:
    """Creates a topic and waits until its leaders are known."""
    ensure_topics(
        KafkaConnection(bootstrap_servers=bootstrap),
        [NewTopic(name, partitions, 1, topic_configs=configs or {})],
    )
    return name


def produce(
    bootstrap: str,
    topic: str,
    records: Iterable[tuple[bytes | None, bytes, list[tuple[str, bytes]] | None]],
    **config: Any,
) -> int:
    """Sends (key, value, headers) records, waits for every ack; returns how many.
    `config`: more KafkaProducer settings (e.g. compression_type)."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5, **config)
    futures = [
        producer.send(topic, key=key, value=value, headers=headers or [])
        for key, value, headers in records
    ]
    producer.flush()
    for future in futures:
        future.get(timeout=30)
    producer.close()
    return len(futures)


class NonUtf8HeaderName(str):
    """A header name whose bytes on the wire are `raw`, not valid UTF-8: what a client in
    another language can write (Kafka's header names are bytes to the broker), written by
    kafka-python's own record encoder, which asks the name for its bytes."""

    raw: bytes

    def __new__(cls, raw: bytes) -> NonUtf8HeaderName:
        name = super().__new__(cls, raw.decode("utf-8", "backslashreplace"))
        name.raw = raw
        return name

    def encode(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        return self.raw


def produce_unchecked(
    bootstrap: str,
    topic: str,
    records: Iterable[tuple[bytes | None, bytes | None, list[tuple[str, bytes | None]] | None]],
    partition: int = 0,
) -> int:
    """Like `produce`, as one batch to one partition, but past `KafkaProducer.send`'s
    argument checks, for what other clients write and kafka-python refuses to: a record with
    neither key nor value, a header with a null value. The batch is encoded by kafka-python's
    record builder and sent by a real producer's sender, as its own batches are."""
    from kafka.producer.producer_batch import ProducerBatch
    from kafka.record.memory_records import MemoryRecordsBuilder

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        producer.partitions_for(topic)  # metadata first, as send() would wait for it
        tp = TopicPartition(topic, partition)
        accumulator = producer._accumulator
        builder = MemoryRecordsBuilder(2, 0, 16 * 1024 * 1024)
        count = 0
        for key, value, headers in records:
            assert builder.append(int(time.time() * 1000), key, value, headers or [])
            count += 1
        batch = ProducerBatch(tp, builder)
        with accumulator._tp_lock(tp):
            accumulator._batches[tp].append(batch)
            accumulator._incomplete.add(batch)
        producer.flush(timeout=30)
        assert batch.produce_future.succeeded(), batch.produce_future.exception
    finally:
        producer.close()
    return count


def drain(
    bootstrap: str,
    topic: str,
    expected: int | None = None,
    timeout_s: float = 60.0,
    isolation_level: str = "read_uncommitted",
    idle_s: float = 2.0,
    **consumer_config: Any,
) -> list[ConsumerRecord]:
    """Reads a topic from the beginning without a group.

    Stops when `expected` records arrived (then waits `idle_s` more to catch extras), or,
    with no `expected`, after `idle_s` without a record; fails after `timeout_s`.
    """
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        isolation_level=isolation_level,
        enable_auto_commit=False,
        **consumer_config,
    )
    try:
        deadline = time.monotonic() + timeout_s
        partitions: list[TopicPartition] = []
        while not partitions:  # the topic may not exist yet: wait for it within the timeout
            known = consumer.partitions_for_topic(topic) or set()
            partitions = [TopicPartition(topic, p) for p in sorted(known)]
            if not partitions:
                if time.monotonic() >= deadline:
                    raise TimeoutError(f"topic {topic} does not exist after {timeout_s}s")
                time.sleep(0.2)
                consumer.topics()  # refresh metadata
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        records: list[ConsumerRecord] = []
        last_seen = time.monotonic()
        reached_at: float | None = None
        while time.monotonic() < deadline:
            batch = consumer.poll(timeout_ms=200)
            for part_records in batch.values():
                records.extend(part_records)
                last_seen = time.monotonic()
            if expected is not None and len(records) >= expected and reached_at is None:
                reached_at = time.monotonic()
            if reached_at is not None and time.monotonic() - reached_at >= idle_s:
                break
            if expected is None and time.monotonic() - last_seen >= idle_s:
                break
        return records
    finally:
        consumer.close()
