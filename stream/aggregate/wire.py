"""The records of the internal topics, encoded and decoded in one place.

Repartition topic (key = symbol for partials, none for markers):
- partials of one symbol from one batch: `{"partials": [[size_ms, start_ms, count, bullish,
  probability_sum, author_tagged, author_agree, {model_version: count}], ...]}`;
- a watermark marker, sent to every partition: `{"watermarks": {"<input partition>": ms}}`.

Changelog topic (compacted; partition k holds the state of repartition partition k):
- `w/<size_ms>/<start_ms>/<symbol>` -> the window's partial (a JSON list), or a tombstone
  once the window is final;
- `m/<input partition>` -> that partition's latest watermark (ms, as text);
- `o` -> the next repartition offset whose effect is not in the state (as text).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from stream.aggregate.combiner import Partial, WindowKey

APPLIED_OFFSET_KEY = b"o"


def partials_value(items: Iterable[tuple[int, int, Partial]]) -> bytes:
    """Repartition value of one symbol's partials: (size_ms, start_ms, partial) each."""
    return orjson.dumps({"partials": [[size, start, *partial] for size, start, partial in items]})


def marker_value(watermarks: dict[int, int]) -> bytes:
    """Repartition value of a watermark marker."""
    return orjson.dumps({"watermarks": {str(p): wm for p, wm in watermarks.items()}})


def decode_repartition(
    key: bytes | None, value: bytes
) -> tuple[list[tuple[WindowKey, Partial]], dict[int, int]]:
    """(partials, watermarks) of one repartition record; one of them is empty."""
    decoded: dict[str, Any] = orjson.loads(value)
    marks = decoded.get("watermarks")
    if marks is not None:
        return [], {int(p): int(wm) for p, wm in marks.items()}
    symbol = (key or b"").decode()
    return [((symbol, item[0], item[1]), item[2:]) for item in decoded["partials"]], {}


def window_changelog_key(key: WindowKey) -> bytes:
    """The changelog key of a window's state."""
    symbol, size, start = key
    return f"w/{size}/{start}/{symbol}".encode()


def watermark_changelog_key(input_partition: int) -> bytes:
    """The changelog key of an input partition's latest watermark."""
    return f"m/{input_partition}".encode()


def partial_value(partial: Partial) -> bytes:
    """The changelog value of a window's state."""
    return orjson.dumps(partial)


def decode_changelog_key(key: bytes) -> tuple[str, Any]:
    """("window", WindowKey) | ("watermark", input partition) | ("applied", None)."""
    text = key.decode()
    if text.startswith("w/"):
        _, size, start, symbol = text.split("/", 3)
        return "window", (symbol, int(size), int(start))
    if text.startswith("m/"):
        return "watermark", int(text[2:])
    if key == APPLIED_OFFSET_KEY:
        return "applied", None
    raise ValueError(f"unknown changelog key {text[:60]!r}")
