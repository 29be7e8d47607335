"""What `stocksent top` shows, without Kafka: window records (see
stream/aggregate/window_record.schema.json) read into a board that keeps, per view and
symbol, the latest record of each of the last few windows, and the ranked rows of the
current window.

- The current window of a view is the latest `window_start` seen for it.
- A later record for the same (symbol, view, window_start) replaces the earlier one (an
  early update is followed by more updates and one final record).
- "Previous window" is the window just before, of the same size: a symbol without a record
  there (no messages mentioned it) shows "new" instead of a change.
- Memory is bounded: per view, windows older than the history (counted back from the
  current window) are dropped, and records for them are not kept.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from common.timestamps import parse_iso_utc

SPARK_BLOCKS = "▁▂▃▄▅▆▇█"
SPARK_GAP = " "


@dataclass(frozen=True, slots=True)
class Window:
    """The fields of one window record that the views show."""

    symbol: str
    start_ms: int
    seconds: int
    count: int
    bullish_share: float
    mean_probability: float
    final: bool

    @property
    def end_ms(self) -> int:
        return self.start_ms + self.seconds * 1000


def _number(record: Mapping[str, Any], name: str, low: float, high: float | None) -> float:
    value = record.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise ValueError(f"{name}: not a number")
    if value < low or (high is not None and value > high):
        raise ValueError(f"{name}: {value} out of range")
    return float(value)


def _whole(record: Mapping[str, Any], name: str, low: int) -> int:
    value = record.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name}: not a whole number >= {low}")
    return value


def parse_window(record: Any) -> Window:
    """A decoded window record as a Window; raises ValueError naming the bad field."""
    if not isinstance(record, Mapping):
        raise ValueError("not a JSON object")
    symbol = record.get("symbol")
    if not isinstance(symbol, str) or not symbol.strip():
        raise ValueError("symbol: not a non-empty string")
    start = record.get("window_start")
    start_s = parse_iso_utc(start) if isinstance(start, str) else None
    if start_s is None:
        raise ValueError("window_start: not an ISO-8601 time")
    final = record.get("final")
    if not isinstance(final, bool):
        raise ValueError("final: not true or false")
    return Window(
        symbol=symbol,
        start_ms=round(start_s * 1000),
        seconds=_whole(record, "window_seconds", 1),
        count=_whole(record, "count", 1),
        bullish_share=_number(record, "bullish_share", 0, 1),
        mean_probability=_number(record, "mean_probability", 0, 1),
        final=final,
    )


def is_window_record(record: Any) -> bool:
    """True when a decoded record has the fields that only window records have."""
    return isinstance(record, Mapping) and "window_start" in record and "window_seconds" in record


def window_length(seconds: int) -> str:
    """A window size as people write it: `1h`, `5m`, `90s`."""
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def spark_block(share: float) -> str:
    """The block of SPARK_BLOCKS for a bullish share: ▁ at 0, █ at 1, evenly between."""
    top = len(SPARK_BLOCKS) - 1
    return SPARK_BLOCKS[min(top, max(0, math.floor(share * top + 0.5)))]


@dataclass(frozen=True, slots=True)
class Row:
    """One symbol in the current window."""

    symbol: str
    count: int
    bullish_share: float
    change_pp: float | None  # percentage points against the previous window; None: new
    sparkline: str  # oldest window first, the current window last
    final: bool


@dataclass(frozen=True, slots=True)
class Frame:
    """What one refresh shows for one view: the current window (None: no window yet), the
    number of symbols in it and its top rows."""

    seconds: int
    start_ms: int | None
    symbols: int
    rows: tuple[Row, ...]


@dataclass
class Board:
    """The latest record of each recent window, per view (window seconds) and symbol."""

    history: int  # windows in a sparkline (the current one included)
    skipped: int = 0  # records that were not valid window records
    _windows: dict[tuple[int, str], dict[int, Window]] = field(default_factory=dict)
    _current: dict[int, int] = field(default_factory=dict)  # view -> latest start

    def __post_init__(self) -> None:
        if self.history < 1:
            raise ValueError("history must be at least one window")

    def add_value(self, value: bytes | None) -> bool:
        """Reads one record's value; False (and counted in `skipped`) when it is not a
        valid window record."""
        try:
            window = parse_window(orjson.loads(value or b""))
        except (orjson.JSONDecodeError, ValueError):
            self.skipped += 1
            return False
        self.add(window)
        return True

    def add(self, window: Window) -> None:
        """Keeps `window` (replacing an earlier record of it) unless it is older than the
        history; moves the view's current window forward and drops what fell out."""
        view = window.seconds
        current = self._current.get(view)
        if current is not None and window.start_ms < self._oldest_kept(view, current):
            return
        self._windows.setdefault((view, window.symbol), {})[window.start_ms] = window
        if current is None or window.start_ms > current:
            self._current[view] = window.start_ms
            self._prune(view)

    def _oldest_kept(self, view: int, current: int) -> int:
        # the sparkline's windows, and at least the previous one (for the change)
        return current - (max(self.history, 2) - 1) * view * 1000

    def _prune(self, view: int) -> None:
        oldest = self._oldest_kept(view, self._current[view])
        for key in [key for key in self._windows if key[0] == view]:
            kept = {s: w for s, w in self._windows[key].items() if s >= oldest}
            if kept:
                self._windows[key] = kept
            else:
                del self._windows[key]

    def windows_held(self) -> int:
        """How many windows the board holds, over every view and symbol."""
        return sum(len(windows) for windows in self._windows.values())

    def frame(self, seconds: int, limit: int) -> Frame:
        """The current window of the view of `seconds`: its symbols by count (then name),
        at most `limit` rows."""
        current = self._current.get(seconds)
        if current is None:
            return Frame(seconds, None, 0, ())
        size_ms = seconds * 1000
        rows = []
        for (view, symbol), windows in self._windows.items():
            shown = windows.get(current) if view == seconds else None
            if shown is None:
                continue
            previous = windows.get(current - size_ms)
            change = (
                None if previous is None else (shown.bullish_share - previous.bullish_share) * 100
            )
            starts = [current - i * size_ms for i in reversed(range(self.history))]
            spark = "".join(
                spark_block(windows[s].bullish_share) if s in windows else SPARK_GAP for s in starts
            )
            rows.append(Row(symbol, shown.count, shown.bullish_share, change, spark, shown.final))
        rows.sort(key=lambda row: (-row.count, row.symbol))
        return Frame(seconds, current, len(rows), tuple(rows[:limit]))
