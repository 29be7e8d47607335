"""The window stage's state of one repartition partition: open windows, the latest
watermark of each input partition, and the repartition offset it is complete up to.

Changes are collected as changelog records (key, value or None for a tombstone), written
in the same transaction as the outputs and the offsets; `restore` rebuilds the state from
them. A window is final when the lowest watermark over ALL input partitions has passed its
end + grace: a record that was not late at the re-key stage precedes its partition's next
marker in the same repartition partition, so it is always in the window before it closes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from stream.aggregate import wire
from stream.aggregate.combiner import Partial, WindowKey, merge_into
from stream.aggregate.windows import NO_WATERMARK, is_past


class PartitionState:
    """State of one repartition partition."""

    def __init__(self) -> None:
        self.windows: dict[WindowKey, Partial] = {}
        self.watermarks: dict[int, int] = {}  # input partition -> ms
        self.applied_offset = -1  # repartition records below it are in the state
        self._touched: set[WindowKey] = set()  # since the last changelog write
        self._updated: set[WindowKey] = set()  # since the last early update
        self._moved: set[int] = set()
        self.stale = 0  # partials for windows already final (at-least-once re-sends)

    def low_watermark(self, input_partitions: int) -> int:
        """The lowest watermark over all input partitions (NO_WATERMARK until each has one)."""
        try:
            return min(self.watermarks[p] for p in range(input_partitions))
        except (KeyError, ValueError):  # an input partition without a marker yet, or none
            return NO_WATERMARK

    def apply(self, key: bytes | None, value: bytes, grace_ms: int, inputs: int) -> None:
        """Applies one repartition record."""
        partials, marks = wire.decode_repartition(key, value)
        if marks:
            for partition, mark in marks.items():
                if mark > self.watermarks.get(partition, NO_WATERMARK):
                    self.watermarks[partition] = mark
                    self._moved.add(partition)
            return
        low = self.low_watermark(inputs)
        for window, partial in partials:
            if is_past(window[2], window[1], grace_ms, low):
                self.stale += partial[0]
                continue
            merge_into(self.windows, window, partial)
            self._touched.add(window)
            self._updated.add(window)

    def take_final(self, grace_ms: int, inputs: int) -> list[tuple[WindowKey, Partial]]:
        """Removes and returns the windows that are final, by (start, size, symbol)."""
        low = self.low_watermark(inputs)
        if low == NO_WATERMARK:
            return []
        final = [(k, p) for k, p in self.windows.items() if is_past(k[2], k[1], grace_ms, low)]
        for window, _ in final:
            del self.windows[window]
        final.sort(key=lambda item: (item[0][2], item[0][1], item[0][0]))
        return final

    def take_updated(self) -> list[tuple[WindowKey, Partial]]:
        """The open windows that changed since the last call (for early updates)."""
        updated = [(k, self.windows[k]) for k in sorted(self._updated) if k in self.windows]
        self._updated.clear()
        return updated

    def changes(
        self, final: Iterable[tuple[WindowKey, Partial]], next_offset: int
    ) -> list[tuple[bytes, bytes | None]]:
        """The changelog records of everything changed since the last call."""
        records: list[tuple[bytes, bytes | None]] = []
        for window in self._touched:
            partial = self.windows.get(window)
            if partial is not None:
                records.append((wire.window_changelog_key(window), wire.partial_value(partial)))
        records += [(wire.window_changelog_key(window), None) for window, _ in final]
        records += [
            (wire.watermark_changelog_key(p), str(self.watermarks[p]).encode())
            for p in sorted(self._moved)
        ]
        records.append((wire.APPLIED_OFFSET_KEY, str(next_offset).encode()))
        self.applied_offset = next_offset
        self._touched.clear()
        self._moved.clear()
        return records

    def restore(self, key: bytes, value: bytes | None) -> None:
        """Applies one changelog record (in changelog order)."""
        kind, what = wire.decode_changelog_key(key)
        if kind == "window":
            if value is None:
                self.windows.pop(what, None)
            else:
                self.windows[what] = _partial(orjson.loads(value))
        elif kind == "watermark" and value is not None:
            self.watermarks[what] = int(value)
        elif kind == "applied" and value is not None:
            self.applied_offset = int(value)


def _partial(raw: Any) -> Partial:
    if not isinstance(raw, list) or len(raw) != 6:
        raise ValueError("changelog window value is not a partial")
    return raw
