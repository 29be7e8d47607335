"""The output record: built here, defined by `window_record.schema.json` next to it."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

import orjson

from stream.aggregate.combiner import (
    AUTHOR_AGREE,
    AUTHOR_TAGGED,
    BULLISH,
    COUNT,
    MODEL_VERSIONS,
    PROBABILITY_SUM,
    Partial,
    WindowKey,
)
from stream.aggregate.windows import iso_ms

SCHEMA_FILE = "window_record.schema.json"


@cache
def schema() -> dict[str, Any]:
    """The JSON Schema of a WindowRecord."""
    text = resources.files("stream.aggregate").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def window_record(window: WindowKey, partial: Partial, final: bool) -> dict[str, Any]:
    """The output record of one window."""
    symbol, size_ms, start_ms = window
    count = partial[COUNT]
    return {
        "symbol": symbol,
        "window_start": iso_ms(start_ms),
        "window_end": iso_ms(start_ms + size_ms),
        "window_seconds": size_ms // 1000,
        "count": count,
        "bullish": partial[BULLISH],
        "bullish_share": partial[BULLISH] / count,
        "mean_probability": min(1.0, max(0.0, partial[PROBABILITY_SUM] / count)),
        "author_tagged": partial[AUTHOR_TAGGED],
        "author_agree": partial[AUTHOR_AGREE],
        "model_versions": dict(sorted(partial[MODEL_VERSIONS].items())),
        "final": final,
    }


def encode(record: dict[str, Any]) -> tuple[bytes, bytes]:
    """(key, value) of an output record."""
    return record["symbol"].encode(), orjson.dumps(record)
