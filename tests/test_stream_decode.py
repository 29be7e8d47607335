"""stream.decode: bytes -> ClassifiableMessage or one closed DeadLetterReason."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stream.decode import ClassifiableMessage, DeadLetterReason, Rejection, decode

LIMIT = 10_000


def ok(value: bytes) -> ClassifiableMessage:
    result = decode(value, LIMIT)
    assert isinstance(result, ClassifiableMessage), result
    return result


def reason(value: bytes | None, limit: int = LIMIT) -> DeadLetterReason:
    result = decode(value, limit)
    assert isinstance(result, Rejection), result
    assert result.detail
    return result.reason


def test_api_message_is_decoded_and_unescaped() -> None:
    value = orjson.dumps(
        {
            "id": 155614013,
            "body": "$SPY momentum &amp; FOMO, don&#39;t &lt;3",
            "created_at": "2019-03-03T05:38:09Z",
            "symbols": [{"symbol": "SPY"}, {"symbol": "AAPL", "id": 686}],
            "entities": {"sentiment": {"basic": "Bullish"}},
            "unknown": [1, 2],
        }
    )
    message = ok(value)
    assert message.id == 155614013
    assert message.text == "$SPY momentum & FOMO, don't <3"
    assert message.created_at == "2019-03-03T05:38:09Z"
    assert message.symbols == ["SPY", "AAPL"]
    assert message.author_sentiment == "bullish"


@pytest.mark.parametrize(
    ("entities", "expected"),
    [
        ({"sentiment": None}, None),
        ({"sentiment": {"basic": "Bearish"}}, "bearish"),
        ({"sentiment": {"basic": "Neutral"}}, None),
        ({"sentiment": {"basic": 1}}, None),
        ({"sentiment": "Bullish"}, None),
        ([], None),
        (None, None),
    ],
)
def test_author_sentiment_is_read_defensively(entities: object, expected: str | None) -> None:
    assert ok(orjson.dumps({"id": 1, "body": "x", "entities": entities})).author_sentiment == (
        expected
    )


def test_optional_fields_of_the_wrong_type_are_ignored() -> None:
    message = ok(orjson.dumps({"id": 1, "body": "x", "created_at": 5, "symbols": ["TSLA", 3, {}]}))
    assert message.created_at is None
    assert message.symbols == ["TSLA"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, DeadLetterReason.NULL_VALUE),
        (b"\xff\xfe", DeadLetterReason.INVALID_UTF8),
        (b'{"id": 1, "body": "\xed\xa0\x80"}', DeadLetterReason.INVALID_UTF8),
        (b"", DeadLetterReason.INVALID_JSON),
        (b'{"id": 1', DeadLetterReason.INVALID_JSON),
        (b"[" * 3000, DeadLetterReason.TOO_DEEP),
        (b"[1]", DeadLetterReason.NOT_AN_OBJECT),
        (b'{"body": "x"}', DeadLetterReason.MISSING_ID),
        (b'{"id": "1", "body": "x"}', DeadLetterReason.ID_NOT_INTEGER),
        (b'{"id": true, "body": "x"}', DeadLetterReason.ID_NOT_INTEGER),
        (b'{"id": 1.0, "body": "x"}', DeadLetterReason.ID_NOT_INTEGER),
        (b'{"id": 0, "body": "x"}', DeadLetterReason.ID_OUT_OF_RANGE),
        (b'{"id": 9223372036854775808, "body": "x"}', DeadLetterReason.ID_OUT_OF_RANGE),
        (b'{"id": 1}', DeadLetterReason.MISSING_BODY),
        (b'{"id": 1, "body": null}', DeadLetterReason.BODY_NOT_STRING),
        (b'{"id": 1, "body": " "}', DeadLetterReason.EMPTY_BODY),
        (b'{"id": 1, "body": "&#10;"}', DeadLetterReason.EMPTY_BODY),
    ],
)
def test_each_bad_record_has_its_reason(value: bytes | None, expected: DeadLetterReason) -> None:
    assert reason(value) == expected


def test_oversize_is_checked_before_decoding() -> None:
    value = orjson.dumps({"id": 1, "body": "x" * 100})
    assert reason(value, limit=len(value) - 1) == DeadLetterReason.OVERSIZE
    assert ok(value).id == 1  # at the limit it is fine


def test_reasons_are_one_closed_set_of_snake_case_names() -> None:
    values = [r.value for r in DeadLetterReason]
    assert len(values) == len(set(values))
    assert all(v.replace("_", "").isalnum() and v == v.lower() for v in values)


@given(st.binary(max_size=300))
def test_decode_never_raises_on_arbitrary_bytes(value: bytes) -> None:
    assert isinstance(decode(value, LIMIT), ClassifiableMessage | Rejection)


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
        lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
        max_leaves=20,
    )
)
def test_decode_never_raises_on_arbitrary_json(document: object) -> None:
    try:
        value = orjson.dumps(document)
    except (TypeError, orjson.JSONEncodeError):
        return  # not representable (e.g. huge integers)
    assert isinstance(decode(value, LIMIT), ClassifiableMessage | Rejection)
