"""Tumbling windows by event time, and when a record is late for one.

Times are whole milliseconds since the epoch (UTC). A window of size S holds the event
times [start, start + S) with start a multiple of S. A record is late for a view when its
window's end + grace is at or below the watermark of its input partition (the highest
event time seen there before it): the window may have been emitted already.
"""

from __future__ import annotations

from dataclasses import dataclass

from common.timestamps import iso_utc_ms

NO_WATERMARK = -(2**63)  # an input partition nothing was read from yet


@dataclass(frozen=True, slots=True)
class View:
    """One tumbling view: its size and its name (the metrics' `window` label)."""

    name: str
    size_ms: int

    @property
    def seconds(self) -> int:
        """The size in whole seconds (`window_seconds` of the output)."""
        return self.size_ms // 1000


def window_start(event_ms: int, size_ms: int) -> int:
    """Start of the window of this size that holds `event_ms`."""
    return event_ms - event_ms % size_ms


def is_past(start_ms: int, size_ms: int, grace_ms: int, watermark_ms: int) -> bool:
    """end + grace <= watermark. For one input partition's watermark: a record of that
    window is late (the window may be emitted already). For the lowest watermark of all
    input partitions: the window is final (no record that is not late can reach it)."""
    return start_ms + size_ms + grace_ms <= watermark_ms


def iso_ms(epoch_ms: int) -> str:
    """ISO-8601 UTC with milliseconds and a `Z`, e.g. `2026-12-04T18:01:00.000Z`."""
    return iso_utc_ms(epoch_ms / 1000)
