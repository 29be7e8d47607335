"""Small facts about StockTwits message objects, defined once for every source."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from common.message_ids import valid_id
from common.timestamps import iso_utc, iso_utc_ms, parse_iso_utc

__all__ = ["RawRecord", "created_at_epoch", "iso_utc", "iso_utc_ms", "message_id"]


@dataclass(frozen=True)
class RawRecord:
    """A replay line that is not a JSON object, published as it was so that the classifier
    dead-letters it with the reason, as it would any bad record from the API."""

    value: bytes
    where: str  # file:line, for logs


def message_id(message: dict[str, Any]) -> int | None:
    """The message's id by the one rule of `common.message_ids` (a JSON integer in
    1..2^63-1), or None: such an object is published unkeyed and the classifier dead-letters
    it with the reason, so a numeric string is not an id here either."""
    return valid_id(message.get("id"))


def created_at_epoch(message: dict[str, Any]) -> float | None:
    """`created_at` (ISO-8601 UTC, `...Z`) as epoch seconds, or None when absent or malformed."""
    value = message.get("created_at")
    return parse_iso_utc(value) if isinstance(value, str) else None
