"""Pipeline measurements on a real Kafka: drain rate, latency at a fixed offered load, the
classifier's start-up time and peak memory. Used by `stocksent bench` (bench/run.py)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

from stocksent.service_process import ServiceProcess
from stocksent.topics_cli import ensure_topics


def create_topics(bootstrap: str, names: Sequence[str], partitions: int) -> None:
    """Creates fresh topics for one measurement and waits for their leaders."""
    ensure_topics({"bootstrap_servers": bootstrap}, [NewTopic(n, partitions, 1) for n in names])


def bench_producer(bootstrap: str) -> KafkaProducer:
    """A fast producer for loading input topics."""
    return KafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        linger_ms=20,
        batch_size=512 * 1024,
        enable_idempotence=True,
    )


def preload(bootstrap: str, topic: str, messages: Sequence[dict[str, Any]]) -> None:
    """Writes message objects keyed by id and waits until all are acknowledged."""
    producer = bench_producer(bootstrap)
    for message in messages:
        producer.send(topic, key=str(message["id"]).encode(), value=orjson.dumps(message))
    producer.flush()
    producer.close()


def start_classifier(
    bootstrap: str,
    input_topic: str,
    output_topic: str,
    dlq_topic: str,
    group_id: str,
    log_path: Path,
    extra_args: Sequence[str] = (),
    ready_timeout_s: float = 120.0,
) -> ServiceProcess:
    """Starts `stocksent classify` and waits for /readyz; start-up time is spawn to ready."""
    args = ["--bootstrap-servers", bootstrap, "--input-topic", input_topic]
    args += ["--output-topic", output_topic, "--dlq-topic", dlq_topic, "--group-id", group_id]
    classifier = ServiceProcess("classify", [*args, *extra_args], log_path)
    try:
        classifier.wait_ready(ready_timeout_s)
    except BaseException:
        classifier.terminate()
        raise
    return classifier


def committed_total(admin: KafkaAdminClient, group_id: str, topic: str) -> int:
    """Sum of the group's committed offsets on a topic."""
    offsets = admin.list_group_offsets(group_id).get(group_id, {})
    return sum(meta.offset for tp, meta in offsets.items() if tp.topic == topic and meta.offset > 0)


def wait_committed(
    bootstrap: str, group_id: str, topic: str, total: int, timeout_s: float
) -> float:
    """Waits until the group committed `total` records of `topic`; returns monotonic time."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if committed_total(admin, group_id, topic) >= total:
                return time.monotonic()
            time.sleep(0.02)
    finally:
        admin.close()
    raise TimeoutError(f"group {group_id} did not commit {total} records in {timeout_s}s")


PACING_S = 0.001  # the offered load's finest step


def offered_load_latency(
    bootstrap: str,
    input_topic: str,
    output_topic: str,
    messages: Sequence[dict[str, Any]],
    rate: float,
    seconds: float,
) -> dict[str, float]:
    """Offers `rate` msgs/s for `seconds` and returns end-to-end latency percentiles (ms).

    Latency is output record timestamp minus input record timestamp, both CreateTime on this
    machine's clock, so it covers queueing, batching, inference and publishing.
    """
    sent_ts: dict[bytes, int] = {}
    received: dict[bytes, int] = {}
    total = int(rate * seconds)
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, isolation_level="read_committed", enable_auto_commit=False
    )
    parts = [TopicPartition(output_topic, p) for p in consumer.partitions_for_topic(output_topic)]
    consumer.assign(parts)
    consumer.seek_to_end(*parts)
    for tp in parts:
        consumer.position(tp)
    # Values are encoded before the clock starts, and the output is read only after the offered
    # load ends (its timestamps are the classifier's send times), so the measuring process
    # takes as little as possible of the 2 cores the classifier and broker run on.
    # Every offered record gets its own id (the texts cycle), so each output matches one input.
    first_id = 50_000_000
    values = [
        (
            str(first_id + i).encode(),
            orjson.dumps({**messages[i % len(messages)], "id": first_id + i}),
        )
        for i in range(total)
    ]
    # linger as the project's own producer does (stocksent.kafka_settings): one request per
    # message would spend a core of this 2-core machine on the load generator itself
    producer = KafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=5, enable_idempotence=True
    )
    # Paced in steps of at least PACING_S: each wake-up sends every record due by then. A
    # sleep per record (every 80 us at 12,600 msgs/s) made the generator a third costlier
    # (4.5 against 3.4 CPU seconds for 10 s of load, measured), on the 2 cores the classifier
    # is measured on; the broker sees no difference, since the producer lingers 5 ms anyway.
    # Connected before the clock starts: a producer's first send also fetches metadata, opens
    # the connection and gets its idempotent producer id, and records sent meanwhile waited
    # in its buffer with their timestamps already taken (up to 200-500 ms for the first
    # records in measured runs; a second of them is 1.7% of a 60 s run, enough to set its
    # p99). That is the load generator's start-up, not the pipeline's latency, so one warm-up
    # record goes first, unmeasured.
    warm_up_id = first_id - 1
    warm_up = orjson.dumps({**messages[0], "id": warm_up_id})
    producer.send(input_topic, key=str(warm_up_id).encode(), value=warm_up)
    producer.flush()
    start = time.monotonic()
    sent = 0
    while sent < total:
        due = min(total, int((time.monotonic() - start) * rate) + 1)
        for i in range(sent, due):
            key, value = values[i]
            now_ms = int(time.time() * 1000)
            sent_ts[key] = now_ms
            producer.send(input_topic, key=key, value=value, timestamp_ms=now_ms)
        sent = max(sent, due)
        time.sleep(max(PACING_S, start + sent / rate - time.monotonic()))
    producer.flush()
    producer.close()
    deadline = time.monotonic() + 60
    while len(received) < len(sent_ts) and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=200).values():
            for record in records:
                if record.key in sent_ts:  # not the warm-up record
                    received[record.key] = record.timestamp
    consumer.close()
    latencies = sorted(received[k] - sent_ts[k] for k in sent_ts if k in received)
    if not latencies:
        raise RuntimeError("no output records arrived during the latency run")

    def pct(q: float) -> float:
        return float(latencies[min(len(latencies) - 1, int(q * len(latencies)))])

    return {
        "latency_offered_msgs_per_s": rate,
        "latency_seconds": seconds,
        "latency_sent": len(sent_ts),
        "latency_received": len(latencies),
        "latency_p50_ms": pct(0.50),
        "latency_p95_ms": pct(0.95),
        "latency_p99_ms": pct(0.99),
        "latency_max_ms": float(latencies[-1]),
        "latency_mean_ms": statistics.fmean(latencies),
    }
