"""Pipeline measurements on a real Kafka: drain rate, latency at a fixed offered load, the
classifier's start-up time and peak memory. Used by `make bench` (bench/run.py)."""

from __future__ import annotations

import re
import statistics
import subprocess
import tempfile
import time
from collections.abc import Sequence
from contextlib import closing
from functools import cache
from pathlib import Path
from typing import Any

import orjson
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

from common.kafka_settings import KafkaConnection
from common.topic_admin import ensure_topics
from stocksent.service_process import ServiceProcess


def create_topics(bootstrap: str, names: Sequence[str], partitions: int) -> None:
    """Creates fresh topics for one measurement and waits for their leaders."""
    ensure_topics(
        KafkaConnection(bootstrap_servers=bootstrap), [NewTopic(n, partitions, 1) for n in names]
    )


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


LOAD_GENERATOR = Path(__file__).with_name("LoadGenerator.java")
# The load generator's JVM: the C1 compiler only and the serial collector, so it takes a
# steady, small share of the cores it shares with the classifier (with the defaults, C2
# compiles in bursts for seconds).
LOAD_GENERATOR_JVM = ("-Xmx256m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC")
# It offers records to a throwaway topic this long before the measured ones, so its send
# path is compiled before the clock starts.
LOAD_WARM_UP_S = 5.0
FIRST_ID = 50_000_000  # offered messages get ids from here: each output matches one input


def offered_load_latency(
    bootstrap: str,
    input_topic: str,
    output_topic: str,
    messages: Sequence[dict[str, Any]],
    rate: float,
    seconds: float,
    warm_up_s: float = LOAD_WARM_UP_S,
    work_dir: Path | None = None,
) -> dict[str, float]:
    """Offers `rate` msgs/s for `seconds` and returns end-to-end latency percentiles (ms).

    Latency is output record timestamp minus input record timestamp, both CreateTime on this
    machine's clock, so it covers queueing, batching, inference and publishing. The load
    comes from bench/LoadGenerator.java (the official Java producer); the input timestamps
    are read back from the input topic afterwards, matched to the outputs by key.
    """
    from common.children import exits_with_parent
    from stocksent.local_kafka import LocalKafka

    java = jdk_or_fail()
    total = int(rate * seconds)
    # positioned at the output's end before anything is offered
    with closing(_assigned_consumer(bootstrap, output_topic, read_committed=True)) as watch:
        input_start = end_offsets(bootstrap, input_topic)
        warm_up_topic = f"{input_topic}.warm-up"
        create_topics(bootstrap, [warm_up_topic], partitions=len(input_start))
        with tempfile.TemporaryDirectory(dir=work_dir) as work:
            templates = Path(work) / "templates.jsonl"
            # the id goes first (the generator writes each record's own id there); texts cycle
            templates.write_bytes(
                b"\n".join(
                    orjson.dumps({"id": 0, **{k: v for k, v in m.items() if k != "id"}})
                    for m in messages[: min(len(messages), total)]
                )
            )
            command = [
                java, *LOAD_GENERATOR_JVM, "-cp", f"{LocalKafka().resolve_jars()}/*",
                str(LOAD_GENERATOR), bootstrap, str(templates), str(FIRST_ID), str(total),
                repr(rate), warm_up_topic, repr(warm_up_s), input_topic,
            ]  # fmt: skip
            done = subprocess.run(  # a benchmark that is killed takes its load generator along
                exits_with_parent(command),
                capture_output=True,
                text=True,
                timeout=seconds + warm_up_s + 600,
            )
        if done.returncode != 0:
            raise RuntimeError(
                f"the load generator failed (exit {done.returncode}): {done.stderr.strip()[-2000:]}"
            )
        with closing(_assigned_consumer(bootstrap, input_topic, start=input_start)) as reader:
            sent_ts = timestamps_by_key(reader, total, timeout_s=120)
        if len(sent_ts) < total:
            raise RuntimeError(
                f"read back {len(sent_ts)} of {total} offered records from {input_topic}"
            )
        received = timestamps_by_key(watch, total, timeout_s=60, keys=set(sent_ts))
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
        "latency_generator_cores": _generator_cores(done.stdout),
    }


@cache
def jdk_or_fail() -> str:
    """`java` that can run a source file (a JDK: it has the compiler), or a clear error."""
    from stocksent.local_kafka import java_or_fail

    java = java_or_fail()
    modules = subprocess.run([java, "--list-modules"], capture_output=True, text=True).stdout
    if "jdk.compiler" not in modules:
        raise RuntimeError(
            f"{java} is a JRE: the benchmark's load generator (bench/LoadGenerator.java) runs "
            "from source, which needs a JDK (Debian: apt-get install openjdk-17-jdk-headless)"
        )
    return java


def _generator_cores(stdout: str) -> float:
    """The generator's CPU per second of the measured phase, from its last line
    `measured: N records, W s, C s CPU`."""
    match = re.search(r"measured: \d+ records, ([\d.]+) s, ([\d.]+) s CPU\s*$", stdout)
    if match is None:
        raise RuntimeError(f"the load generator did not report its figures: {stdout[-500:]!r}")
    return float(match[2]) / float(match[1])


def end_offsets(bootstrap: str, topic: str) -> dict[TopicPartition, int]:
    """The topic's end offset per partition."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        ends: dict[TopicPartition, int] = consumer.end_offsets(parts)
        return ends
    finally:
        consumer.close()


def _assigned_consumer(
    bootstrap: str,
    topic: str,
    start: dict[TopicPartition, int] | None = None,
    read_committed: bool = False,
) -> KafkaConsumer:
    """A consumer of every partition of `topic`, at `start`, or at the end when not given."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        isolation_level="read_committed" if read_committed else "read_uncommitted",
    )
    parts = (
        list(start)
        if start
        else [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
    )
    consumer.assign(parts)
    if start:
        for tp, offset in start.items():
            consumer.seek(tp, offset)
    else:
        consumer.seek_to_end(*parts)
        for tp in parts:
            consumer.position(tp)  # resolve the end now, before anything is written
    return consumer


def timestamps_by_key(
    consumer: KafkaConsumer, count: int, timeout_s: float, keys: set[bytes] | None = None
) -> dict[bytes, int]:
    """Key -> record timestamp, polling until `count` records (of `keys`, when given) are
    seen or the timeout."""
    found: dict[bytes, int] = {}
    deadline = time.monotonic() + timeout_s
    while len(found) < count and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=200, max_records=50_000).values():
            for record in records:
                if keys is None or record.key in keys:
                    found[record.key] = record.timestamp
    return found
