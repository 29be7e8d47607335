"""The aggregator's drain on a real Kafka: N labeled records preloaded into a fresh input
topic, `stocksent aggregate` started on it, timed from ready until both stages committed
everything (every input record, and every partial aggregate and marker it wrote), with the
CPU it (and the broker) spent meanwhile. Used by `make bench` (bench/run.py) beside
the classifier's pipeline drain; runnable alone:
`python -m bench.aggregate --bootstrap-servers HOST:PORT [--messages N]`."""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
from kafka import KafkaAdminClient, KafkaConsumer

from bench.cpu import CpuMeter
from bench.pipeline import bench_producer, committed_total, create_topics, end_offsets
from stocksent.service_process import REPO_ROOT, ServiceProcess

SAMPLES = REPO_ROOT / "samples" / "stocktwits-messages.jsonl"
PARTITIONS = 6
EVENTS_PER_S = 20.0  # event-time density: the whole of StockTwits is of this order
JITTER_S = 5.0  # records arrive up to this much out of order (within the default grace)
FIRST_EVENT_S = 1_780_000_000  # 2026-05-28
MODEL_VERSION = "bench-model-1"
MARKER_LOOKBACK = 50  # offsets read back from a partition's end to find its last record


def _sample_messages() -> list[dict[str, Any]]:
    """The sample messages usable as labeled ones (the file also holds hostile lines)."""
    usable = []
    with SAMPLES.open(encoding="utf-8") as handle:
        for line in handle:
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if isinstance(message, dict) and isinstance(message.get("body"), str):
                symbols = message.get("symbols")
                if isinstance(symbols, list) and all(isinstance(s, dict) for s in symbols):
                    usable.append(message)
    return usable


def labeled_records(count: int, seed: int = 7) -> Iterator[tuple[bytes, bytes]]:
    """(key, value) of `count` labeled records (stream/sentiment_record.schema.json): bodies
    and symbols of the sample messages, labels and times drawn here."""
    rng = random.Random(seed)
    samples = _sample_messages()
    for i in range(count):
        message = samples[i % len(samples)]
        event_s = FIRST_EVENT_S + i / EVENTS_PER_S - rng.random() * JITTER_S
        probability = rng.random()
        label = "bullish" if probability >= 0.5 else "bearish"
        record = {
            "id": 700_000_000 + i,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(event_s)),
            "symbols": [str(s.get("symbol")) for s in message["symbols"] if s.get("symbol")],
            "body": message["body"],
            "sentiment": {"label": label, "probability": probability},
            "model_version": MODEL_VERSION,
            "author_sentiment": rng.choice((None, None, "bullish", "bearish")),
            "source": {"topic": "stocktwits.messages", "partition": i % PARTITIONS, "offset": i},
            "classified_at": "2026-12-04T18:00:00.000Z",
        }
        yield str(record["id"]).encode(), orjson.dumps(record)


def preload(bootstrap: str, topic: str, count: int) -> None:
    """Writes `count` labeled records and waits until all are acknowledged."""
    producer = bench_producer(bootstrap)
    for key, value in labeled_records(count):
        producer.send(topic, key=key, value=value)
    producer.flush()
    producer.close()


def record_ends(bootstrap: str, topic: str) -> dict[int, int]:
    """Per partition, the offset after its last committed record (a transactional topic
    ends with a commit marker, which takes an offset but is no record)."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, isolation_level="read_committed", enable_auto_commit=False
    )
    try:
        ends = end_offsets(bootstrap, topic)
        consumer.assign(list(ends))
        last = {tp.partition: 0 for tp in ends}
        for tp, end in ends.items():
            consumer.seek(tp, max(0, end - MARKER_LOOKBACK))
        while any(consumer.position(tp) < end for tp, end in ends.items()):
            for tp, records in consumer.poll(timeout_ms=500).items():
                last[tp.partition] = max(last[tp.partition], records[-1].offset + 1)
        return last
    finally:
        consumer.close()


def wait_drained(bootstrap: str, run: dict[str, str], count: int, timeout_s: float) -> float:
    """Waits until the re-key stage committed `count` input records and the window stage
    every repartition record; returns the monotonic time."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if committed_total(admin, run["group"], run["input"]) >= count:
                break
            time.sleep(0.05)
        written = sum(record_ends(bootstrap, run["repartition"]).values())
        windows = f"{run['group']}.windows"
        while time.monotonic() < deadline:
            if committed_total(admin, windows, run["repartition"]) >= written:
                return time.monotonic()
            time.sleep(0.05)
    finally:
        admin.close()
    raise TimeoutError(f"the aggregator did not drain {count} records in {timeout_s}s")


def aggregate_figures(
    bootstrap: str, count: int, work_dir: Path, broker_pid: int | None = None
) -> dict[str, Any]:
    """Drain rate (records/s) and CPU per record of one exactly-once aggregator."""
    run_id = uuid.uuid4().hex[:8]
    run = {
        "input": f"bench.sentiment.{run_id}",
        "output": f"bench.by-symbol.{run_id}",
        "group": f"bench-aggregator-{run_id}",
    }
    run["repartition"] = run["output"] + ".repartition"
    create_topics(bootstrap, [run["input"]], PARTITIONS)
    preload(bootstrap, run["input"], count)
    args = [
        "--bootstrap-servers", bootstrap, "--input-topic", run["input"],
        "--output-topic", run["output"], "--dlq-topic", f"bench.sentiment-dlq.{run_id}",
        "--group-id", run["group"], "--instance-id", "bench",
        "--processing-guarantee", "exactly-once",
    ]  # fmt: skip
    aggregator = ServiceProcess("aggregate", args, work_dir / f"aggregator-{run_id}.log")
    try:
        aggregator.wait_ready(timeout=120)
        meter = CpuMeter(aggregator.process.pid, broker_pid)
        ready_at = time.monotonic()
        done_at = wait_drained(bootstrap, run, count, timeout_s=600)
        cpu = meter.split()
        rss = aggregator.peak_rss_mb()
    finally:
        exit_code = aggregator.terminate()
    seconds = done_at - ready_at
    parts = {"aggregator_python": cpu.python_s + cpu.tensorflow_s}
    if cpu.broker_s is not None:
        parts["broker"] = cpu.broker_s
    return {
        "aggregate_messages": count,
        "aggregate_msgs_per_s": round(count / seconds, 1),
        "aggregate_cpu_us_per_msg": {k: round(1e6 * v / count, 1) for k, v in parts.items()},
        "aggregate_cores_busy": round(sum(parts.values()) / seconds, 2),
        "aggregate_rss_mb": round(rss, 1),
        "aggregate_exit_code": exit_code,
    }


def main(argv: list[str]) -> int:
    """Measures one drain and prints its figures."""
    parser = argparse.ArgumentParser(prog="python -m bench.aggregate", description=__doc__)
    parser.add_argument("--bootstrap-servers", required=True)
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--broker-pid", type=int, default=None)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="stocksent-bench-aggregate-") as tmp:
        figures = aggregate_figures(
            args.bootstrap_servers, args.messages, Path(tmp), args.broker_pid
        )
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
