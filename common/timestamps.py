"""ISO-8601 UTC timestamps as every record, header and log of the project writes them: a `Z`,
and milliseconds where the moment matters to a latency (`fetched_at`, `classified_at`,
`dlq_at`). The one definition; everything else imports it."""

from __future__ import annotations

import time
from datetime import UTC, datetime


def iso_utc(epoch: float) -> str:
    """Epoch seconds as ISO-8601 UTC with a `Z`, e.g. `2026-05-31T22:32:49Z`."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_utc_ms(epoch: float) -> str:
    """Like `iso_utc` with milliseconds, e.g. `2026-05-31T22:32:49.120Z`."""
    moment = datetime.fromtimestamp(epoch, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def utc_now_iso_ms() -> str:
    """Now, as `iso_utc_ms`."""
    return iso_utc_ms(time.time())


def parse_iso_utc(text: str) -> float | None:
    """Epoch seconds of an ISO-8601 time (`...Z` or an offset; none means UTC), or None when
    it is not one."""
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()
