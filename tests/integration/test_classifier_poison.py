"""A poison corpus interleaved with real API messages: every bad record lands in the DLQ,
unchanged, with the right reason; every good one comes out labeled; the metrics count both."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from stream import dead_letter as dlq
from stream.decode import DeadLetterReason as R
from stream.predictor import SentimentPredictor, load_predictor
from tests.classifier_support import ThreadedClassifier, classifier_settings, model_spec
from tests.kafka_support import drain, produce

pytestmark = pytest.mark.integration

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


def test_poison_corpus_goes_to_the_dlq_and_good_records_come_out(
    kafka_bootstrap: str,
    make_topic: Callable[..., str],
    group_id: str,
    samples_dir: Path,
) -> None:
    assert len(POISON) >= 20 and {reason for _, _, reason in POISON} >= set(R) - {
        R.PREDICTION_FAILED  # needs a failing model: see the unit tests
    }
    predictor: SentimentPredictor = load_predictor(model_spec())
    input_topic, output_topic = make_topic("in", 3), make_topic("out", 3)
    dlq_topic = make_topic("dlq", 1)
    good = good_messages(samples_dir)
    records: list[tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]] = []
    bad_by_key: dict[bytes, tuple[bytes | None, R]] = {}
    for i in range(max(len(good), len(POISON))):
        if i < len(good):
            records.append((str(good[i]["id"]).encode(), orjson.dumps(good[i]), []))
        if i < len(POISON):
            kind, value, reason = POISON[i]
            key = f"poison-{i}".encode()
            bad_by_key[key] = (value, reason)
            records.append((key, value, [("source", b"synthetic"), ("kind", kind.encode())]))
    produce(kafka_bootstrap, input_topic, records)  # type: ignore[arg-type]

    settings = classifier_settings(
        kafka_bootstrap,
        input_topic=input_topic,
        output_topic=output_topic,
        dlq_topic=dlq_topic,
        group_id=group_id,
        model=model_spec(),
        max_message_bytes=MAX_BYTES,
        batch_size=16,  # several batches mixing good and bad records
    )
    with ThreadedClassifier(settings, predictor) as classifier:
        outputs = drain(kafka_bootstrap, output_topic, expected=len(good), timeout_s=120)
        letters = drain(kafka_bootstrap, dlq_topic, expected=len(POISON), timeout_s=60)

    assert sorted(orjson.loads(r.value)["id"] for r in outputs) == sorted(m["id"] for m in good)
    assert {orjson.loads(r.value)["sentiment"]["label"] for r in outputs} <= {"bullish", "bearish"}

    assert len(letters) == len(POISON)
    reasons: Counter[str] = Counter()
    for letter in letters:
        headers = dict(letter.headers)
        original, reason = bad_by_key[letter.key]
        kind = headers["kind"].decode()
        assert headers[dlq.REASON].decode() == reason.value, kind
        reasons[reason.value] += 1
        assert headers[dlq.DETAIL], kind
        assert headers[dlq.SOURCE_TOPIC].decode() == input_topic
        assert int(headers[dlq.SOURCE_PARTITION]) in range(3)
        assert int(headers[dlq.SOURCE_OFFSET]) >= 0
        assert int(headers[dlq.SOURCE_TIMESTAMP_MS]) > 0
        assert headers[dlq.DEAD_LETTERED_AT].decode().endswith("Z")
        assert headers["source"] == b"synthetic"  # the producer's headers are kept
        assert letter.value == original, f"{kind}: DLQ value differs from the input bytes"

    sample = classifier.sample
    assert sample(P + "records_published_total") == len(good)
    assert sample(P + "messages_consumed_total") == len(good) + len(POISON)
    for reason in R:
        assert sample(P + "dead_letters_total", {"reason": reason.value}) == reasons[reason.value]
