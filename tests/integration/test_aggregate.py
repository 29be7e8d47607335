"""`stocksent aggregate` on a real broker: every final window equals the ground truth
computed from the input, exactly once under read_committed, also across SIGKILLs and
instances joining and leaving; at-least-once repeats only what its docs say."""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest
from kafka import KafkaConsumer, TopicPartition

from stream.aggregate.window_record import schema
from tests.aggregate_support import (
    AggregatorProcess,
    P,
    ground_truth,
    labeled_stream,
    mismatches,
    produce_stream,
    window_key,
)
from tests.classifier_support import metric_value
from tests.kafka_support import drain, produce
from tests.polling import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

SIZES_S = (10, 60)
GRACE_S = 5
PARTITIONS = 3


def common_args(topics: dict[str, str], group_id: str, guarantee: str) -> list[str]:
    return [
        "--input-topic", topics["in"], "--output-topic", topics["out"],
        "--dlq-topic", topics["dlq"], "--group-id", group_id,
        "--window", "10s", "--long-window", "1m", "--grace", f"{GRACE_S}s",
        "--processing-guarantee", guarantee,
    ]  # fmt: skip


@pytest.fixture
def topics(make_topic: Callable[..., str]) -> dict[str, str]:
    out = make_topic("by-symbol", 1)  # only for a unique name: the aggregator recreates it
    return {"in": make_topic("sentiment", PARTITIONS), "out": out + ".agg", "dlq": out + ".dlq"}


def emitted(bootstrap: str, topic: str, finals: int, early: bool = False) -> list[dict[str, Any]]:
    """The committed output once `finals` final windows are in (and 3 s more for extras);
    with `early`, the early updates too."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, isolation_level="read_committed",
                             enable_auto_commit=False, auto_offset_reset="earliest")  # fmt: skip
    records: list[Any] = []
    try:
        wait_for(lambda: consumer.partitions_for_topic(topic), 60, f"topic {topic}")
        consumer.assign([TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)])
        deadline, reached = time.monotonic() + 180, None
        while time.monotonic() < deadline and (reached is None or time.monotonic() < reached):
            for batch in consumer.poll(timeout_ms=200).values():
                records.extend(batch)
            values = [orjson.loads(r.value) for r in records]
            if reached is None and sum(v["final"] for v in values) >= finals:
                reached = time.monotonic() + 3.0
    finally:
        consumer.close()
    for record in records:
        assert record.key.decode() == orjson.loads(record.value)["symbol"]
    values = [orjson.loads(r.value) for r in records]
    return values if early else [v for v in values if v["final"]]


def exactly_once(records: list[dict[str, Any]]) -> dict[tuple[str, int, int], dict[str, Any]]:
    copies = Counter(window_key(r) for r in records)
    repeated = {k: n for k, n in copies.items() if n > 1}
    assert not repeated, f"windows emitted more than once: {list(repeated.items())[:5]}"
    return {window_key(r): r for r in records}


def test_every_final_window_equals_the_ground_truth(
    kafka_bootstrap: str, topics: dict[str, str], group_id: str, tmp_path: Path
) -> None:
    stream = labeled_stream(PARTITIONS, 1500)
    truth = ground_truth(stream, SIZES_S, GRACE_S)
    assert truth.late[10] > 0 and truth.dead_late > 0  # the stream exercises lateness
    malformed = [b"not json", b"[1, 2]", b'{"symbols": ["AAPL"]}', b'{"created_at": 5}']
    produce(kafka_bootstrap, topics["in"], [(None, v, None) for v in malformed])
    produce_stream(kafka_bootstrap, topics["in"], stream, 1)
    aggregator = AggregatorProcess(
        kafka_bootstrap, [*common_args(topics, group_id, "exactly-once"), "--instance-id", "a",
                          "--max-poll-records", "500", "--emit-every", "1ms"],
        tmp_path / "a.log",
    )  # fmt: skip
    try:
        aggregator.wait_ready(timeout=60)
        records = emitted(kafka_bootstrap, topics["out"], len(truth.windows), early=True)
        exposition = aggregator.get("/metrics")[1]
    finally:
        aggregator.terminate()
    validator = jsonschema.Draft202012Validator(schema())
    for record in records:
        validator.validate(record)
    finals = [r for r in records if r["final"]]
    assert mismatches(exactly_once(finals), truth) == []
    # early updates (same key, same partition: in order): before the final record of their
    # window, never above its figures
    early = [r for r in records if not r["final"]]
    assert early, "--emit-every gave no early update"
    final_at = {window_key(r): i for i, r in enumerate(records) if r["final"]}
    for i, record in enumerate(records):
        key = window_key(record)
        if not record["final"] and key in final_at:
            assert i < final_at[key], f"early update of {key} after its final record"
            assert record["count"] <= truth.windows[key]["count"]
    for size, name in zip(SIZES_S, ("10s", "1m"), strict=True):
        assert _labeled(exposition, P + "late_records_total", window=name) == truth.late[size]
        finals_of_view = sum(1 for key in truth.windows if key[1] == size)
        emitted_of_view = _labeled(exposition, P + "windows_emitted_total", window=name,
                                   final="true")  # fmt: skip
        assert emitted_of_view == finals_of_view
        # only the window of the last records (far ahead, one per partition) stays open
        assert _labeled(exposition, P + "open_windows", window=name) == 1
    assert _labeled(exposition, P + "dead_letters_total", reason="late") == truth.dead_late
    dead = drain(kafka_bootstrap, topics["dlq"], expected=truth.dead_late + 4, timeout_s=60)
    assert Counter(dict(r.headers)["dlq_reason"] for r in dead) == {
        b"late": truth.dead_late, b"invalid_json": 1, b"not_an_object": 1,
        b"invalid_created_at": 2,
    }  # fmt: skip
    assert {r.value for r in dead} >= set(malformed)  # the original bytes, for inspection
    assert metric_value(exposition, P + "messages_consumed_total") == len(stream) + 4


def test_sigkill_twice_mid_stream_each_window_once_and_exact(
    kafka_bootstrap: str, topics: dict[str, str], group_id: str, tmp_path: Path
) -> None:
    stream = labeled_stream(PARTITIONS, 6000, seed=5, spread_s=1800)
    truth = ground_truth(stream, SIZES_S, GRACE_S)
    thirds = _thirds(stream)
    args = [*common_args(topics, group_id, "exactly-once"), "--instance-id", "a",
            "--max-poll-records", "100"]  # fmt: skip
    first_id, consumed_at_kill = 1, []
    for round_number, part in enumerate(thirds):
        produce_stream(kafka_bootstrap, topics["in"], part, first_id)
        first_id += len(part)
        aggregator = AggregatorProcess(kafka_bootstrap, args, tmp_path / f"a{round_number}.log")
        try:
            aggregator.wait_ready(timeout=60)
            if round_number < 2:  # killed while it works through its part, with state
                wait_for(lambda a=aggregator: _finals(a) > 0, 60, "final windows emitted")
                consumed_at_kill.append(_consumed(aggregator))
                aggregator.kill()
            else:
                records = emitted(kafka_bootstrap, topics["out"], len(truth.windows))
        finally:
            aggregator.terminate()
    # each kill came mid-stream (fewer records consumed than were waiting) and after the
    # window stage had committed state (restored from the changelog by the next start)
    assert sum(map(len, thirds)) == len(stream)
    assert 0 < consumed_at_kill[0] < len(thirds[0]), consumed_at_kill
    assert 0 < consumed_at_kill[1] < len(thirds[0]) + len(thirds[1]), consumed_at_kill
    assert mismatches(exactly_once(records), truth) == []


def test_two_instances_one_joining_and_one_leaving(
    kafka_bootstrap: str, topics: dict[str, str], group_id: str, tmp_path: Path
) -> None:
    stream = labeled_stream(PARTITIONS, 6000, seed=9, spread_s=1800)
    truth = ground_truth(stream, SIZES_S, GRACE_S)
    first, second, third = _thirds(stream)
    base = [*common_args(topics, group_id, "exactly-once"), "--max-poll-records", "300"]

    def start(name: str) -> AggregatorProcess:
        process = AggregatorProcess(kafka_bootstrap, [*base, "--instance-id", name],
                                    tmp_path / f"{name}.log")  # fmt: skip
        process.wait_ready(timeout=60)
        return process

    a = start("a")
    b: AggregatorProcess | None = None
    try:
        produce_stream(kafka_bootstrap, topics["in"], first, 1)
        wait_for(lambda: _consumed(a) > 0, 60, "a consumes")
        b = start("b")  # joins mid-stream
        produce_stream(kafka_bootstrap, topics["in"], second, 1 + len(first))
        wait_for(lambda: _consumed(b) > 0, 60, "b takes partitions and consumes")  # type: ignore[union-attr]
        a.terminate()  # leaves mid-stream: b takes everything over
        produce_stream(kafka_bootstrap, topics["in"], third, 1 + len(first) + len(second))
        records = emitted(kafka_bootstrap, topics["out"], len(truth.windows))
    finally:
        a.terminate()
        if b is not None:
            b.terminate()
    assert mismatches(exactly_once(records), truth) == []


@pytest.mark.slow
def test_at_least_once_repeats_only_what_it_documents(
    kafka_bootstrap: str, topics: dict[str, str], group_id: str, tmp_path: Path
) -> None:
    """docs: at-least-once emits every final window at least once; a repeat after a window
    stage crash has the same figures; a re-key stage crash can count the records it re-reads
    once more in windows still open: never fewer than the truth."""
    stream = labeled_stream(PARTITIONS, 6000, seed=13, spread_s=1800)
    truth = ground_truth(stream, SIZES_S, GRACE_S)
    args = [*common_args(topics, group_id, "at-least-once"), "--instance-id", "a",
            "--max-poll-records", "300"]  # fmt: skip
    first_id = 1
    for round_number, part in enumerate(_thirds(stream)):
        produce_stream(kafka_bootstrap, topics["in"], part, first_id)
        first_id += len(part)
        aggregator = AggregatorProcess(kafka_bootstrap, args, tmp_path / f"a{round_number}.log")
        try:
            aggregator.wait_ready(timeout=60)
            if round_number < 2:
                wait_for(lambda a=aggregator: _consumed(a) > 0, 60, "records consumed")
                aggregator.kill()
            else:
                records = drain(kafka_bootstrap, topics["out"], expected=len(truth.windows),
                                timeout_s=180, idle_s=3.0)  # fmt: skip
        finally:
            aggregator.terminate()
    copies: dict[tuple[str, int, int], list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        value = orjson.loads(record.value)
        copies[window_key(value)].append(value)
    assert set(copies) >= set(truth.windows)
    for key, values in copies.items():
        assert key in truth.windows, key
        assert all(v["count"] >= truth.windows[key]["count"] for v in values), key


def _thirds(stream: list[Any]) -> list[list[Any]]:
    """The stream in three parts, each with the next third of every partition's records
    (in order): each part moves every partition's watermark."""
    by_partition: dict[int, list[Any]] = defaultdict(list)
    for record in stream:
        by_partition[record.partition].append(record)
    parts: list[list[Any]] = [[], [], []]
    for records in by_partition.values():
        size = len(records) // 3
        for i, part in enumerate(parts):
            part.extend(records[i * size : (i + 1) * size if i < 2 else None])
    return parts


def _consumed(process: AggregatorProcess) -> float:
    try:
        return metric_value(process.get("/metrics")[1], P + "messages_consumed_total")
    except OSError:
        return 0.0


def _finals(process: AggregatorProcess) -> float:
    """Final windows emitted (so the window stage has committed state to its changelog)."""
    try:
        exposition = process.get("/metrics")[1]
    except OSError:
        return 0.0
    return sum(_labeled(exposition, P + "windows_emitted_total", final="true", window=w)
               for w in ("10s", "1m"))  # fmt: skip


def _labeled(exposition: str, name: str, **labels: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return 0.0


def test_a_missing_input_or_a_changelog_of_another_size_is_one_line(
    kafka_bootstrap: str, topics: dict[str, str], group_id: str
) -> None:
    from common.failures import ExitCode
    from tests.kafka_support import create_topic
    from tests.test_one_line_errors import assert_one_line_error, stocksent

    base = ["aggregate", "--bootstrap-servers", kafka_bootstrap, "--metrics-port", "0",
            *common_args(topics, group_id, "exactly-once")]  # fmt: skip
    missing = [*base, "--input-topic", "no.such.topic.here"]
    line = assert_one_line_error(*stocksent(*missing), ExitCode.BAD_INPUT)
    assert "no.such.topic.here" in line and "no such topic" in line
    create_topic(kafka_bootstrap, topics["out"] + ".changelog", PARTITIONS + 1)
    line = assert_one_line_error(*stocksent(*base), ExitCode.BAD_INPUT)
    assert "changelog" in line and "must match" in line
