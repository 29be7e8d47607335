"""Durations as options take them: `500ms`, `30s`, `5m`, `1h`, or a bare number of seconds."""

from __future__ import annotations

import re
from dataclasses import dataclass

_UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")


@dataclass(frozen=True)
class Duration:
    """A duration in whole milliseconds, and its name as given (`60s`, `1h`): the name is
    the `window` label of the metrics."""

    ms: int
    name: str

    def __str__(self) -> str:  # as the help and the effective configuration show it
        return self.name


def duration(text: str) -> Duration:
    """Parses a duration; raises ValueError with a short reason."""
    match = _PATTERN.match(text)
    if not match:
        raise ValueError("expected a duration like 500ms, 30s, 5m, 1h or a number of seconds")
    number, unit = match.group(1), match.group(2) or "s"
    ms = float(number) * _UNITS_MS[unit]
    if ms != int(ms):
        raise ValueError("must be a whole number of milliseconds")
    return Duration(int(ms), f"{number}{unit}")


def window_duration(text: str) -> Duration:
    """A window size: a whole number of seconds, at least one."""
    value = duration(text)
    if value.ms < 1000 or value.ms % 1000:
        raise ValueError("a window must be a whole number of seconds, at least 1s")
    return value


def optional_window_duration(text: str) -> Duration | None:
    """A window size, or None for `0` (the view is disabled)."""
    value = duration(text)
    return None if value.ms == 0 else window_duration(text)
