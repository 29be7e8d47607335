"""stream.sentiment_record, its JSON Schema, stream.dead_letter and stream.http."""

from __future__ import annotations

import urllib.error
import urllib.request

import jsonschema
import orjson
import pytest
from prometheus_client import CollectorRegistry

from stream import dead_letter as dlq
from stream.decode import ClassifiableMessage, DeadLetterReason
from stream.http import HealthServer
from stream.metrics import METRIC_NAMES, PREFIX, ClassifierMetrics
from stream.sentiment_record import schema, sentiment_record, utc_now_iso

MESSAGE = ClassifiableMessage(
    id=155614013, text="$SPY <3 & more", created_at="2019-03-03T05:38:09Z",
    symbols=["SPY", "AAPL"], author_sentiment=None,
)  # fmt: skip


def record(**overrides: object) -> dict:
    value = orjson.loads(
        sentiment_record(
            MESSAGE, label="bullish", probability=0.75, model_version="v1", topic="in",
            partition=3, offset=42, classified_at=utc_now_iso(),
        )
    )  # fmt: skip
    value.update(overrides)
    return value


def validator() -> jsonschema.Validator:
    return jsonschema.Draft202012Validator(
        schema(), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def test_record_is_valid_and_carries_the_contract_fields() -> None:
    jsonschema.Draft202012Validator.check_schema(schema())
    value = record()
    validator().validate(value)
    assert value["id"] == 155614013 and value["body"] == "$SPY <3 & more"
    assert value["sentiment"] == {"label": "bullish", "probability": 0.75}
    assert value["source"] == {"topic": "in", "partition": 3, "offset": 42}
    assert value["classified_at"].endswith("Z")


@pytest.mark.parametrize(
    "bad",
    [
        {"id": "155614013"},
        {"sentiment": {"label": "neutral", "probability": 0.5}},
        {"sentiment": {"label": "bullish", "probability": 1.5}},
        {"author_sentiment": "Bullish"},
        {"symbols": [{"symbol": "SPY"}]},
        {"surprise": 1},
        {"classified_at": "yesterday"},
    ],
)
def test_schema_rejects_what_the_contract_forbids(bad: dict) -> None:
    with pytest.raises(jsonschema.ValidationError):
        validator().validate(record(**bad))


def test_dead_letter_keeps_bytes_and_says_why() -> None:
    letter = dlq.dead_letter(
        key=b"7", value=b"\xff", original_headers=[("source", b"live"), ("dlq_reason", b"x")],
        reason=DeadLetterReason.INVALID_UTF8, detail="bad byte", topic="in", partition=1,
        offset=9, timestamp_ms=123, dead_lettered_at="2026-01-01T00:00:00.000Z",
    )  # fmt: skip
    headers = dict(letter.headers)
    assert letter.value == b"\xff" and letter.key == b"7"
    assert headers["source"] == b"live"
    assert headers[dlq.REASON] == b"invalid_utf8"  # a forged upstream dlq_ header is dropped
    assert [name for name, _ in letter.headers].count(dlq.REASON) == 1
    assert set(dlq.HEADER_NAMES) <= set(headers)


def test_dead_letter_too_big_for_kafka_is_cut_and_marked() -> None:
    value = b"x" * (dlq.MAX_DLQ_RECORD_BYTES + 10)
    letter = dlq.dead_letter(
        key=None, value=value, original_headers=[], reason=DeadLetterReason.OVERSIZE,
        detail="big", topic="in", partition=0, offset=0, timestamp_ms=0, dead_lettered_at="",
    )  # fmt: skip
    assert letter.value is not None and len(letter.value) > 990_000
    assert letter.value == value[: len(letter.value)]
    assert dict(letter.headers)[dlq.TRUNCATED_FROM] == str(len(value)).encode()


def test_metric_names_are_the_closed_list() -> None:
    registry = CollectorRegistry()
    ClassifierMetrics(registry)
    exposed = {m.name for m in registry.collect()}
    # counters are exposed without their `_total` suffix as family names
    assert exposed == {PREFIX + n.removesuffix("_total") for n in METRIC_NAMES}


def test_http_serves_metrics_health_and_readiness() -> None:
    registry = CollectorRegistry()
    ClassifierMetrics(registry).consumed.inc(3)
    ready = [False]
    server = HealthServer("127.0.0.1", 0, registry, lambda: (ready[0], "why")).start()
    base = f"http://127.0.0.1:{server.port}"
    try:
        with urllib.request.urlopen(base + "/metrics") as reply:
            assert "stocksent_classifier_messages_consumed_total 3.0" in reply.read().decode()
        with urllib.request.urlopen(base + "/healthz") as reply:
            assert reply.status == 200
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(base + "/readyz")
        assert err.value.code == 503
        ready[0] = True
        with urllib.request.urlopen(base + "/readyz") as reply:
            assert reply.status == 200
    finally:
        server.stop()


def test_observe_many_equals_one_observe_each() -> None:
    from prometheus_client import generate_latest

    from stream.metrics import END_TO_END_BUCKETS, observe_many

    amounts = [0.0, 0.005, 0.0051, 0.15, 0.2, 60.0, 61.0, 1e9, *END_TO_END_BUCKETS]
    one_by_one, bulk = CollectorRegistry(), CollectorRegistry()
    for registry, observe in ((one_by_one, False), (bulk, True)):
        metrics = ClassifierMetrics(registry)
        if observe:
            observe_many(metrics.end_to_end_seconds, amounts)
        else:
            for amount in amounts:
                metrics.end_to_end_seconds.observe(amount)

    def samples(registry: CollectorRegistry) -> list[bytes]:
        lines = generate_latest(registry).split(b"\n")
        return [line for line in lines if b"_created" not in line]  # creation times differ

    assert samples(bulk) == samples(one_by_one)
    assert bulk.get_sample_value(PREFIX + "end_to_end_seconds_count") == len(amounts)
