"""Input record bytes -> a message to classify, or the one reason it cannot be classified.

Validation is deliberately small: a JSON object with an `id` by the one rule of
`common.message_ids` and a non-empty string `body`. Everything else (`created_at`, `symbols`, `entities.sentiment`) is optional and
read defensively, because the API's fields come and go between schema years.
"""

from __future__ import annotations

import enum
import html
from dataclasses import dataclass
from typing import Any

import orjson

from common.message_ids import IdProblem, id_problem


class DeadLetterReason(enum.StrEnum):
    """Why a record went to the dead-letter topic: one closed set, used by the DLQ header,
    the `reason` metric label and the tests alike."""

    NULL_VALUE = "null_value"  # a tombstone: no value at all
    OVERSIZE = "oversize"  # larger than --max-message-bytes; not even decoded
    INVALID_UTF8 = "invalid_utf8"
    INVALID_JSON = "invalid_json"
    TOO_DEEP = "too_deep"  # nesting beyond the JSON parser's limit
    NOT_AN_OBJECT = "not_an_object"
    MISSING_ID = "missing_id"
    ID_NOT_INTEGER = "id_not_integer"
    ID_OUT_OF_RANGE = "id_out_of_range"
    MISSING_BODY = "missing_body"
    BODY_NOT_STRING = "body_not_string"
    EMPTY_BODY = "empty_body"
    PREDICTION_FAILED = "prediction_failed"  # the model raised on this one message
    # the Kafka client cannot parse the record (e.g. a header name that is not UTF-8, a
    # failed CRC, a codec it lacks): skipped past; the DLQ copy has no key or value
    UNREADABLE = "unreadable"
    OUTPUT_REFUSED = "output_refused"  # the broker refused the labeled record for good


@dataclass(frozen=True, slots=True)
class ClassifiableMessage:
    """The parts of a StockTwits message the classifier uses."""

    id: int
    text: str  # body, HTML-unescaped
    created_at: str | None
    symbols: list[str]
    author_sentiment: str | None  # "bullish" | "bearish" | None


@dataclass(frozen=True, slots=True)
class Rejection:
    """A record that cannot be classified: the reason, and a short human detail."""

    reason: DeadLetterReason
    detail: str


def decode(value: bytes | None, max_bytes: int) -> ClassifiableMessage | Rejection:
    """Decodes and validates one input record value; never raises."""
    if value is None:
        return Rejection(DeadLetterReason.NULL_VALUE, "record has no value")
    if len(value) > max_bytes:
        return Rejection(DeadLetterReason.OVERSIZE, f"{len(value)} bytes > limit {max_bytes}")
    try:
        obj = orjson.loads(value)
    except orjson.JSONDecodeError as err:
        return _parse_failure(value, str(err))
    if type(obj) is not dict:
        return Rejection(DeadLetterReason.NOT_AN_OBJECT, f"top-level JSON {_json_type(obj)}")
    if "id" not in obj:
        return Rejection(DeadLetterReason.MISSING_ID, "no `id` field")
    message_id = obj["id"]
    problem = id_problem(message_id)
    if problem is IdProblem.NOT_INTEGER:
        return Rejection(DeadLetterReason.ID_NOT_INTEGER, f"`id` is {_json_type(message_id)}")
    if problem is IdProblem.OUT_OF_RANGE:
        return Rejection(DeadLetterReason.ID_OUT_OF_RANGE, f"`id` {message_id} not in 1..2^63-1")
    if "body" not in obj:
        return Rejection(DeadLetterReason.MISSING_BODY, "no `body` field")
    body = obj["body"]
    if type(body) is not str:
        return Rejection(DeadLetterReason.BODY_NOT_STRING, f"`body` is {_json_type(body)}")
    if "&" in body:  # the API HTML-escapes bodies (&amp; &#39;); skip the call when it cannot
        body = html.unescape(body)
    if not body.strip():
        return Rejection(DeadLetterReason.EMPTY_BODY, "`body` is blank")
    created_at = obj.get("created_at")
    return ClassifiableMessage(
        id=message_id,
        text=body,
        created_at=created_at if type(created_at) is str else None,
        symbols=_symbols(obj.get("symbols")),
        author_sentiment=_author_sentiment(obj.get("entities")),
    )


def _parse_failure(value: bytes, error: str) -> Rejection:
    # Only the error path pays for telling the three kinds of parse failure apart.
    if error.startswith("depth limit"):
        return Rejection(DeadLetterReason.TOO_DEEP, error[:200])
    try:
        value.decode("utf-8")
    except UnicodeDecodeError as err:
        return Rejection(DeadLetterReason.INVALID_UTF8, f"{err.reason} at byte {err.start}")
    if "UTF-8" in error:  # lone surrogates decode in Python but are not valid JSON text
        return Rejection(DeadLetterReason.INVALID_UTF8, error[:200])
    return Rejection(DeadLetterReason.INVALID_JSON, error[:200])


def _symbols(raw: Any) -> list[str]:
    """Ticker strings from the API's `symbols: [{"symbol": "AAPL", ...}]`; junk is skipped."""
    if type(raw) is not list:
        return []
    found = []
    for item in raw:
        if type(item) is dict:
            symbol = item.get("symbol")
            if type(symbol) is str and symbol:
                found.append(symbol)
        elif type(item) is str and item:  # some replays flatten symbols to strings
            found.append(item)
    return found


def _author_sentiment(entities: Any) -> str | None:
    """The author's own tag from `entities.sentiment.basic` ("Bullish"/"Bearish"), or None."""
    if type(entities) is not dict:
        return None
    sentiment = entities.get("sentiment")
    if type(sentiment) is not dict:
        return None
    basic = sentiment.get("basic")
    if type(basic) is not str:
        return None
    lowered = basic.lower()
    return lowered if lowered in ("bullish", "bearish") else None


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return f"a number ({value!r:.40})"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"
