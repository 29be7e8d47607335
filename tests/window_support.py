"""Window records for the tests of `stocksent top` and `stocksent tail --topic`, built by the
aggregator's own record builder (stream/aggregate/window_record.py)."""

from __future__ import annotations

from typing import Any

from stream.aggregate.combiner import BULLISH, COUNT, MODEL_VERSIONS, PROBABILITY_SUM, empty_partial
from stream.aggregate.window_record import encode, window_record

MINUTE_MS = 60_000
BASE_MS = 1_780_000_020_000 // MINUTE_MS * MINUTE_MS  # a whole minute on 2026-05-28


def record(
    symbol: str,
    start_ms: int,
    count: int,
    bullish: int,
    final: bool = True,
    size_ms: int = MINUTE_MS,
) -> dict[str, Any]:
    """A window record of `count` messages, `bullish` of them bullish (probability 0.8, the
    rest 0.3), all labeled by model m-1."""
    partial = empty_partial()
    partial[COUNT], partial[BULLISH] = count, bullish
    partial[PROBABILITY_SUM] = 0.8 * bullish + 0.3 * (count - bullish)
    partial[MODEL_VERSIONS] = {"m-1": count}
    return window_record((symbol, size_ms, start_ms), partial, final)


def value(*args: Any, **kwargs: Any) -> bytes:
    """The record's value as the aggregator writes it."""
    return encode(record(*args, **kwargs))[1]


def keyed(*args: Any, **kwargs: Any) -> tuple[bytes, bytes, None]:
    """(key, value, no headers), as tests.kafka_support.produce takes them."""
    key, encoded = encode(record(*args, **kwargs))
    return key, encoded, None
