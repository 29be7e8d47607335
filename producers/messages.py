"""Small facts about StockTwits message objects, defined once for every source."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True)
class RawRecord:
    """A replay line that is not a JSON object, published as it was so that the classifier
    dead-letters it with the reason, as it would any bad record from the API."""

    value: bytes
    where: str  # file:line, for logs


def message_id(message: dict[str, Any]) -> int | None:
    """The message's integer id, or None when it has none (such an object is not a message)."""
    value = message.get("id")
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def created_at_epoch(message: dict[str, Any]) -> float | None:
    """`created_at` (ISO-8601 UTC, `...Z`) as epoch seconds, or None when absent or malformed."""
    value = message.get("created_at")
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def iso_utc(epoch: float) -> str:
    """Epoch seconds as ISO-8601 UTC with a `Z`, e.g. `2026-05-31T22:32:49Z`."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_utc_ms(epoch: float) -> str:
    """Like `iso_utc` with milliseconds: the `fetched_at` header."""
    moment = datetime.fromtimestamp(epoch, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
