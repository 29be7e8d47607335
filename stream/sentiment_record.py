"""The output record: built here, defined by `sentiment_record.schema.json` next to it."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

import orjson

from common.timestamps import utc_now_iso_ms as utc_now_iso
from stream.decode import ClassifiableMessage

# utc_now_iso: the service stamps classified_at with the one ISO helper
__all__ = ["SCHEMA_FILE", "schema", "sentiment_record", "utc_now_iso"]

SCHEMA_FILE = "sentiment_record.schema.json"


@cache
def schema() -> dict[str, Any]:
    """The JSON Schema of a SentimentRecord (the one definition of the output)."""
    text = resources.files("stream").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def sentiment_record(
    message: ClassifiableMessage,
    *,
    label: str,
    probability: float,
    model_version: str,
    topic: str,
    partition: int,
    offset: int,
    classified_at: str,
) -> bytes:
    """The output record value (orjson bytes) for one classified message."""
    return orjson.dumps(
        {
            "id": message.id,
            "created_at": message.created_at,
            "symbols": message.symbols,
            "body": message.text,
            "sentiment": {"label": label, "probability": probability},
            "model_version": model_version,
            "author_sentiment": message.author_sentiment,
            "source": {"topic": topic, "partition": partition, "offset": offset},
            "classified_at": classified_at,
        }
    )
