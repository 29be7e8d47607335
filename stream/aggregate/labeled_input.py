"""The parts of a labeled record (stream/sentiment_record.schema.json) the aggregator uses,
read fast: one orjson parse, no objects beyond a tuple."""

from __future__ import annotations

import enum
from typing import NamedTuple

import orjson

from common.timestamps import parse_iso_utc

_EPOCH_MS_BY_TEXT: dict[str, int] = {}  # created_at repeats (second resolution): parse once
_SYMBOLS_BY_LIST: dict[tuple[object, ...], tuple[str, ...]] = {}
_CACHE_LIMIT = 200_000  # entries per cache before it starts over


class AggregatorDeadLetterReason(enum.StrEnum):
    """Why the aggregator sent a labeled record to its DLQ: the DLQ header and the `reason`
    label of `dead_letters_total`."""

    NULL_VALUE = "null_value"
    INVALID_JSON = "invalid_json"
    NOT_AN_OBJECT = "not_an_object"
    INVALID_CREATED_AT = "invalid_created_at"  # missing, null, or not ISO-8601
    INVALID_SYMBOLS = "invalid_symbols"  # missing, or not a list of strings
    INVALID_SENTIMENT = "invalid_sentiment"  # label or probability missing or wrong
    INVALID_MODEL_VERSION = "invalid_model_version"
    LATE = "late"  # later than the grace for every view: counted in no window


# One usable labeled record, a plain tuple (built in the hot loop: a NamedTuple's __new__
# costs a Python call): (event_ms, symbols upper-case without `$` each once, bullish,
# probability, author_tagged, author_agrees, model_version).
Labeled = tuple[int, tuple[str, ...], bool, float, bool, bool, str]


class Unusable(NamedTuple):
    """A record the aggregator cannot use, and why."""

    reason: AggregatorDeadLetterReason
    detail: str


def parse_labeled(value: bytes | None) -> Labeled | Unusable:
    """The record's figures, or why it cannot be used."""
    if value is None:
        return Unusable(AggregatorDeadLetterReason.NULL_VALUE, "record has no value")
    try:
        record = orjson.loads(value)
    except orjson.JSONDecodeError as err:
        return Unusable(AggregatorDeadLetterReason.INVALID_JSON, f"not JSON: {err}")
    if not isinstance(record, dict):
        return Unusable(AggregatorDeadLetterReason.NOT_AN_OBJECT, "JSON value is not an object")
    event_ms = epoch_ms(record.get("created_at"))
    if event_ms is None:
        detail = f"created_at {str(record.get('created_at'))[:40]!r} is not ISO-8601"
        return Unusable(AggregatorDeadLetterReason.INVALID_CREATED_AT, detail)
    symbols = _symbols(record.get("symbols"))
    if symbols is None:
        return Unusable(
            AggregatorDeadLetterReason.INVALID_SYMBOLS, "symbols is not a list of strings"
        )
    sentiment = record.get("sentiment")
    label = sentiment.get("label") if isinstance(sentiment, dict) else None
    probability = sentiment.get("probability") if isinstance(sentiment, dict) else None
    if label not in ("bullish", "bearish") or not isinstance(probability, int | float):
        return Unusable(
            AggregatorDeadLetterReason.INVALID_SENTIMENT, "sentiment label/probability invalid"
        )
    if isinstance(probability, bool) or not 0.0 <= probability <= 1.0:
        return Unusable(AggregatorDeadLetterReason.INVALID_SENTIMENT, "probability not in [0, 1]")
    version = record.get("model_version")
    if not isinstance(version, str) or not version:
        return Unusable(
            AggregatorDeadLetterReason.INVALID_MODEL_VERSION, "model_version is not a string"
        )
    author = record.get("author_sentiment")
    tagged = author in ("bullish", "bearish")
    return (
        event_ms,
        symbols,
        label == "bullish",
        float(probability),
        tagged,
        tagged and author == label,
        version,
    )


def epoch_ms(created_at: object) -> int | None:
    """Milliseconds since the epoch of an ISO-8601 time (naive means UTC), or None."""
    if not isinstance(created_at, str):
        return None
    cached = _EPOCH_MS_BY_TEXT.get(created_at)
    if cached is not None:
        return cached
    seconds = parse_iso_utc(created_at)
    if seconds is None:
        return None
    ms = round(seconds * 1000)
    if len(_EPOCH_MS_BY_TEXT) >= _CACHE_LIMIT:
        _EPOCH_MS_BY_TEXT.clear()
    _EPOCH_MS_BY_TEXT[created_at] = ms
    return ms


def _symbols(raw: object) -> tuple[str, ...] | None:
    """The symbols, normalized; None unless a list of strings. Lists repeat (the same few
    symbols): each distinct one is normalized once."""
    if type(raw) is not list:
        return None
    try:
        given = tuple(raw)
        cached = _SYMBOLS_BY_LIST.get(given)
    except TypeError:  # an unhashable item: not a string
        return None
    if cached is not None:
        return cached
    if not all(isinstance(s, str) for s in given):
        return None
    seen: dict[str, None] = {}
    for symbol in given:
        name = symbol.strip().removeprefix("$").upper()
        if name:
            seen[name] = None
    if len(_SYMBOLS_BY_LIST) >= _CACHE_LIMIT:
        _SYMBOLS_BY_LIST.clear()
    normalized = _SYMBOLS_BY_LIST[given] = tuple(seen)
    return normalized
