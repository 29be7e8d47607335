"""A poison corpus of more than 40 kinds interleaved with real API messages, on the real broker,
through `stocksent classify` as an operator runs it: every bad record lands in the DLQ
(unchanged, or cut where Kafka cannot carry it, and said so) with the right reason; every good
one comes out labeled, keyed by its id; nothing is lost or skipped, the loop never stalls,
every offset is committed, and SIGTERM is answered in time with input still arriving."""

from __future__ import annotations

import gzip
import json
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from kafka import KafkaConsumer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from stream import dead_letter as dlq
from stream.decode import DeadLetterReason as R
from stream.liveness import SHUTDOWN_BOUND_S
from tests.classifier_support import (
    ClassifierProcess,
    InputMessage,
    input_records,
    model_spec,
    produce_over_time,
)
from tests.kafka_support import NonUtf8HeaderName, drain, produce, produce_unchecked

pytestmark = [pytest.mark.integration, pytest.mark.timeout(400)]

P = "stocksent_classifier_"
MAX_BYTES = 64 * 1024


def deep(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


def message(**fields: object) -> bytes:
    return orjson.dumps({"id": 99, "body": "$SPY calls", **fields})


# (kind, value, expected reason): at least one per reason, and the nasty shapes
POISON: list[tuple[str, bytes | None, R]] = [
    ("tombstone", None, R.NULL_VALUE),
    ("oversize valid JSON", message(body="bull " * 40_000), R.OVERSIZE),
    ("oversize garbage", b"\xff" * 600_000, R.OVERSIZE),
    ("binary garbage", bytes(range(256)) * 3, R.INVALID_UTF8),
    ("gzip bytes", gzip.compress(b'{"id": 1, "body": "x"}'), R.INVALID_UTF8),
    ("latin-1 body", b'{"id": 5, "body": "caf\xe9"}', R.INVALID_UTF8),
    ("lone surrogate", b'{"id": 5, "body": "\xed\xa0\x80"}', R.INVALID_UTF8),
    ("empty bytes", b"", R.INVALID_JSON),
    ("truncated JSON", b'{"id": 1, "body": "bull', R.INVALID_JSON),
    ("two documents", b'{"id": 1, "body": "x"}{"id": 2}', R.INVALID_JSON),
    ("NaN", b"NaN", R.INVALID_JSON),
    ("python repr", b"{'id': 1, 'body': 'x'}", R.INVALID_JSON),
    ("deep arrays", deep(5000), R.TOO_DEEP),
    ("deep field in a message", b'{"id": 7, "body": "x", "x": ' + deep(2000) + b"}", R.TOO_DEEP),
    ("array", b'[{"id": 1, "body": "x"}]', R.NOT_AN_OBJECT),
    ("string", b'"$SPY to the moon"', R.NOT_AN_OBJECT),
    ("number", b"155614013", R.NOT_AN_OBJECT),
    ("null", b"null", R.NOT_AN_OBJECT),
    ("no id", orjson.dumps({"body": "$SPY calls"}), R.MISSING_ID),
    ("id as string", message(id="155614013"), R.ID_NOT_INTEGER),
    ("id as float", message(id=1.5), R.ID_NOT_INTEGER),
    ("id as bool", message(id=True), R.ID_NOT_INTEGER),
    ("id null", message(id=None), R.ID_NOT_INTEGER),
    ("id beyond 64 bits", b'{"id": 123456789012345678901234567890, "body": "x"}', R.ID_NOT_INTEGER),
    ("id negative", message(id=-3), R.ID_OUT_OF_RANGE),
    ("id zero", message(id=0), R.ID_OUT_OF_RANGE),
    ("id above int64", b'{"id": 18446744073709551615, "body": "x"}', R.ID_OUT_OF_RANGE),
    ("no body", orjson.dumps({"id": 8}), R.MISSING_BODY),
    ("body number", message(body=42), R.BODY_NOT_STRING),
    ("body list", message(body=["bull"]), R.BODY_NOT_STRING),
    ("body object", message(body={"text": "bull"}), R.BODY_NOT_STRING),
    ("body null", message(body=None), R.BODY_NOT_STRING),
    ("body empty", message(body=""), R.EMPTY_BODY),
    ("body whitespace", message(body=" \n\t "), R.EMPTY_BODY),
    ("body escaped whitespace", message(body="&#32;&#9;"), R.EMPTY_BODY),
]


def good_messages(samples_dir: Path) -> list[dict]:
    """Real API message objects of 2019 and 2026, plus odd-but-valid shapes."""
    found = []
    for name in ("symbol_AAPL_2019-03.json", "messages_only_2019-10.json"):
        found += json.loads((samples_dir / name).read_text())["messages"]
    with (samples_dir / "symbol_TSLA_2026-05_messages.jsonl").open() as handle:
        found += [json.loads(line) for line in handle if line.strip()]
    found += [  # optional fields of the wrong type are ignored, not fatal
        {"id": 900_000_001, "body": "$SPY puts", "symbols": "SPY", "entities": []},
        {"id": 900_000_002, "body": "calls", "created_at": 17, "symbols": [1, None, {}]},
        {"id": 900_000_003, "body": "&lt;3 $TSLA &amp; $AAPL", "entities": {"sentiment": 5}},
        {"id": 900_000_004, "body": "bull " * 10_000},  # big, but under the limit
        {"id": 2**63 - 1, "body": "the largest id", "unknown": {"nested": [1, 2, 3]}},
    ]
    return found


# Bad records that need a producer of their own or more than a value: (kind, key, value,
# extra headers, expected reason). Each carries a `kind` header first, which the DLQ keeps.
BIG_VALUE = b"\xff" * 1_040_000  # fits the input topic; not with the DLQ headers beside it
HOSTILE: list[tuple[str, bytes | None, bytes | None, list[Any], R]] = [
    ("DLQ copy over max.request.size", b"big-value", BIG_VALUE, [], R.OVERSIZE),
    ("200 KB key", b"k" * 200_000, b"{junk", [], R.INVALID_JSON),
    ("200 headers of 1 KB", b"many-headers", b"{junk", [(f"h{i}", b"x" * 1000) for i in range(200)],
     R.INVALID_JSON),
    ("header value not UTF-8", b"bad-header-value", b"{junk", [("h", b"\xff\xfe")], R.INVALID_JSON),
    ("empty key", b"", b"{junk", [], R.INVALID_JSON),
]  # fmt: skip
# written past kafka-python's send() checks, as other clients can: one batch, partition 0
UNCHECKED: list[tuple[str, bytes | None, bytes | None, list[Any], R]] = [
    ("neither key nor value", None, None, [], R.NULL_VALUE),
    ("header with a null value", b"null-header", b"{junk", [("empty", None)], R.INVALID_JSON),
]
# one batch to partition 1 that the client cannot parse from its second record on
UNREADABLE_BATCH = 2
CODECS = ("gzip", "snappy", "lz4", "zstd")


def end_offsets(bootstrap: str, topic: str, partitions: int) -> dict[int, int]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        ends = consumer.end_offsets([TopicPartition(topic, p) for p in range(partitions)])
        return {tp.partition: offset for tp, offset in ends.items()}
    finally:
        consumer.close()


def committed(bootstrap: str, group: str, topic: str, partitions: int) -> dict[int, int | None]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group)
    try:
        return {p: consumer.committed(TopicPartition(topic, p)) for p in range(partitions)}
    finally:
        consumer.close()


def samples(exposition: str, name: str) -> dict[str, float]:
    """label value (the first label) -> sample value, or {"": value} when unlabelled."""
    found = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name == name:
                found[next(iter(sample.labels.values()), "")] = sample.value
    return found


def test_poison_corpus_goes_to_the_dlq_and_good_records_come_out(
    kafka_bootstrap: str,
    make_topic: Callable[..., str],
    group_id: str,
    samples_dir: Path,
    tmp_path: Path,
) -> None:
    assert len(POISON) >= 20 and {reason for _, _, reason in POISON} >= set(R) - {
        R.PREDICTION_FAILED,  # needs a failing model: see the unit tests
        R.OUTPUT_REFUSED,  # needs a broker refusing outputs: see the unit tests
        R.UNREADABLE,  # not a value: a record the client cannot parse, produced below
    }
    partitions = 3
    input_topic, output_topic = make_topic("in", partitions), make_topic("out", partitions)
    dlq_topic = make_topic("dlq", 1)
    good = good_messages(samples_dir)
    expected_ids = [m["id"] for m in good]
    records: list[tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]] = []
    bad: dict[str, tuple[bytes | None, bytes | None, R]] = {}  # kind -> (key, value, reason)
    for i in range(max(len(good), len(POISON))):
        if i < len(good):
            records.append((str(good[i]["id"]).encode(), orjson.dumps(good[i]), []))
        if i < len(POISON):
            kind, value, reason = POISON[i]
            key = f"poison-{i}".encode()
            bad[kind] = (key, value, reason)
            records.append((key, value, [("kind", kind.encode()), ("source", b"synthetic")]))
    for kind, key, value, headers, reason in HOSTILE:
        bad[kind] = (key, value, reason)
        records.append((key, value, [("kind", kind.encode()), ("source", b"synthetic"), *headers]))
    # good records whose key is not their id, or null: the output is keyed by the id anyway
    records.append((b"not-the-id", orjson.dumps({"id": 700_000_001, "body": "calls"}), []))
    records.append((None, orjson.dumps({"id": 700_000_002, "body": "puts"}), []))
    expected_ids += [700_000_001, 700_000_002]
    produce(kafka_bootstrap, input_topic, records)  # type: ignore[arg-type]

    for n, codec in enumerate(CODECS):  # compressed batches, a bad record inside each
        ids = [710_000_000 + 100 * n + i for i in range(10)]
        kind = f"junk in a {codec} batch"
        bad[kind] = (kind.encode(), b"{junk", R.INVALID_JSON)
        produce(
            kafka_bootstrap,
            input_topic,
            [(str(i).encode(), orjson.dumps({"id": i, "body": f"$SPY {codec}"}), []) for i in ids]
            + [(kind.encode(), b"{junk", [("kind", kind.encode()), ("source", b"synthetic")])],
            compression_type=codec,
        )
        expected_ids += ids

    unchecked = []
    for kind, key, value, headers, reason in UNCHECKED:
        bad[kind] = (key, value, reason)
        unchecked.append(
            (key, value, [("kind", kind.encode()), ("source", b"synthetic"), *headers])
        )
    unchecked.append((b"720000001", orjson.dumps({"id": 720_000_001, "body": "up"}), [("x", None)]))
    expected_ids.append(720_000_001)
    produce_unchecked(kafka_bootstrap, input_topic, unchecked, partition=0)

    first_unreadable = end_offsets(kafka_bootstrap, input_topic, partitions)[1] + 1
    produce_unchecked(  # the client parses the first record, not the second, nor the third
        kafka_bootstrap,
        input_topic,
        [
            (b"720000002", orjson.dumps({"id": 720_000_002, "body": "fine"}), []),
            (b"720000003", orjson.dumps({"id": 720_000_003, "body": "x"}),
             [(NonUtf8HeaderName(b"\xff\xfe-name"), b"v")]),
            (b"720000004", orjson.dumps({"id": 720_000_004, "body": "after it"}), []),
        ],
        partition=1,
    )  # fmt: skip
    expected_ids.append(720_000_002)
    unreadable = {(1, first_unreadable + i) for i in range(UNREADABLE_BATCH)}
    kinds = len(POISON) + len(HOSTILE) + len(CODECS) + len(UNCHECKED) + 2  # + the batch
    assert kinds >= 40
    total = sum(end_offsets(kafka_bootstrap, input_topic, partitions).values())
    letters_expected = len(bad) + len(unreadable)
    assert total == len(expected_ids) + letters_expected

    args = [
        "--input-topic", input_topic, "--output-topic", output_topic, "--dlq-topic", dlq_topic,
        "--group-id", group_id, "--model", model_spec(),
        "--max-message-bytes", str(MAX_BYTES), "--batch-size", "16",
    ]  # fmt: skip
    service = ClassifierProcess(kafka_bootstrap, args, tmp_path / "classify.log")
    try:
        service.wait_ready(timeout=120)
        outputs = drain(kafka_bootstrap, output_topic, expected=len(expected_ids), timeout_s=120)
        letters = drain(kafka_bootstrap, dlq_topic, expected=letters_expected, timeout_s=60)
        ends = end_offsets(kafka_bootstrap, input_topic, partitions)
        deadline = time.monotonic() + 30
        while committed(kafka_bootstrap, group_id, input_topic, partitions) != ends:
            assert time.monotonic() < deadline, "offsets not committed to the end"
            time.sleep(0.5)
        exposition = service.get("/metrics")[1]
        health = service.get("/healthz")

        # input still arriving when SIGTERM comes
        feeder = produce_over_time(
            kafka_bootstrap,
            input_topic,
            input_records(InputMessage(800_000_000 + i, f"$SPY calls {i}", "bullish")
                          for i in range(3000)),
            seconds=4,
        )  # fmt: skip
        time.sleep(1.5)
        signalled = time.monotonic()
        exit_code = service.terminate(timeout=SHUTDOWN_BOUND_S + 10)
        stopped_s = time.monotonic() - signalled
        feeder.join(timeout=30)
    finally:
        service.terminate()

    print(
        f"\n{kinds} kinds; input {total} records: {len(outputs)} outputs, {len(letters)} DLQ, "
        f"0 skipped; SIGTERM to exit {stopped_s:.1f}s"
    )
    assert health == (200, "ok\n")
    assert exit_code == 0 and stopped_s < SHUTDOWN_BOUND_S, service.log()

    assert sorted(orjson.loads(r.value)["id"] for r in outputs) == sorted(expected_ids)
    assert all(r.key == str(orjson.loads(r.value)["id"]).encode() for r in outputs)
    assert {orjson.loads(r.value)["sentiment"]["label"] for r in outputs} <= {"bullish", "bearish"}

    assert len(letters) == letters_expected
    reasons: Counter[str] = Counter()
    for letter in letters:
        headers = dict(letter.headers)
        reasons[headers[dlq.REASON].decode()] += 1
        coordinates = (int(headers[dlq.SOURCE_PARTITION]), int(headers[dlq.SOURCE_OFFSET]))
        assert headers[dlq.SOURCE_TOPIC].decode() == input_topic
        assert headers[dlq.DEAD_LETTERED_AT].decode().endswith("Z")
        assert headers[dlq.DETAIL]
        if coordinates in unreadable:
            assert headers[dlq.REASON] == b"unreadable" and letter.value is None
            unreadable.discard(coordinates)
            continue
        kind = headers["kind"].decode()
        key, original, reason = bad.pop(kind)
        assert headers[dlq.REASON].decode() == reason.value, kind
        assert int(headers[dlq.SOURCE_TIMESTAMP_MS]) > 0
        assert headers["source"] == b"synthetic"  # the producer's headers are kept
        if dlq.TRUNCATED_FROM in headers:
            assert kind == "DLQ copy over max.request.size"
            assert original is not None and letter.value == original[: len(letter.value)]
            assert int(headers[dlq.TRUNCATED_FROM]) == len(original) > len(letter.value)
        else:
            assert letter.value == original, f"{kind}: DLQ value differs from the input bytes"
        if dlq.KEY_TRUNCATED_FROM in headers:
            assert key is not None and letter.key == key[: dlq.MAX_DLQ_KEY_BYTES]
        elif key is None:
            assert letter.key == b"" and headers[dlq.KEY_WAS_NULL] == b"true"
        else:
            assert letter.key == key, kind
        if kind == "200 headers of 1 KB":
            assert int(headers[dlq.HEADERS_DROPPED]) > 100
        if kind == "header with a null value":
            assert headers["empty"] == b"" and dlq.NULL_HEADER_VALUES in headers
        if kind == "header value not UTF-8":
            assert headers["h"] == b"\xff\xfe"
    assert not bad, f"never dead-lettered: {sorted(bad)}"
    assert not unreadable

    assert samples(exposition, P + "records_published_total") == {"": len(expected_ids)}
    assert samples(exposition, P + "messages_consumed_total") == {"": total}
    assert set(samples(exposition, P + "records_skipped_total").values()) == {0.0}
    by_reason = samples(exposition, P + "dead_letters_total")
    assert {r: n for r, n in by_reason.items() if n} == dict(reasons)
