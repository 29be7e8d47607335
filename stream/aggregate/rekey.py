"""The re-key stage's pure work on one poll batch: lateness per input partition, then
partial sums per (symbol, view, window start), the combiner (see stream/aggregate/combiner.py).

A record is late for a view when its window's end + grace <= the watermark of its input
partition before it (the highest `created_at` seen there). A record late for one view only
still counts in the others; a record late for every view goes to the aggregator's DLQ
(reason `late`), so nothing is dropped silently. A record without symbols counts in no
window (`messages_without_symbols_total`) but still moves the watermark.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from stream.aggregate.combiner import Partial, WindowKey
from stream.aggregate.labeled_input import (
    AggregatorDeadLetterReason,
    Unusable,
    parse_labeled,
)
from stream.aggregate.windows import NO_WATERMARK, View


@dataclass
class RekeyedBatch:
    """What one poll batch became."""

    partials: dict[WindowKey, Partial] = field(default_factory=dict)
    late: dict[str, int] = field(default_factory=dict)  # view name -> records late for it
    unusable: list[tuple[Any, Unusable]] = field(default_factory=list)  # (record, why)
    without_symbols: int = 0
    consumed: int = 0
    advanced: dict[int, int] = field(default_factory=dict)  # input partition -> new watermark


def rekey_batch(
    batch: Mapping[Any, Sequence[Any]],
    watermarks: MutableMapping[int, int],
    views: Sequence[View],
    grace_ms: int,
) -> RekeyedBatch:
    """Combines a batch (TopicPartition -> records in offset order); advances `watermarks`
    (input partition -> ms) in place."""
    out = RekeyedBatch(late={view.name: 0 for view in views})
    sizes = [(view.name, view.size_ms) for view in views]
    for tp, records in batch.items():
        before = watermarks.get(tp.partition, NO_WATERMARK)
        after = _rekey_partition(records, before, sizes, grace_ms, out)
        if after > before:
            watermarks[tp.partition] = after
            out.advanced[tp.partition] = after
    return out


def _rekey_partition(
    records: Iterable[Any],
    watermark: int,
    sizes: Sequence[tuple[str, int]],
    grace_ms: int,
    out: RekeyedBatch,
) -> int:
    """The hot loop: adds one partition's records to `out`; returns its new watermark."""
    partials, late, unusable = out.partials, out.late, out.unusable
    count = 0
    for record in records:
        count += 1
        labeled = parse_labeled(record.value)
        if type(labeled) is not tuple:  # an Unusable (a NamedTuple)
            unusable.append((record, labeled))  # type: ignore[arg-type]
            continue
        event_ms, symbols, bullish, probability, tagged, agrees, version = labeled  # type: ignore[misc]
        if not symbols:
            out.without_symbols += 1
        else:
            counted = False
            for name, size in sizes:  # windows.window_start and is_past, inlined (hot)
                start = event_ms - event_ms % size
                if start + size + grace_ms <= watermark:
                    late[name] += 1
                    continue
                counted = True
                for symbol in symbols:
                    key = (symbol, size, start)
                    partial = partials.get(key)
                    if partial is None:
                        partial = partials[key] = [0, 0, 0.0, 0, 0, {}]
                    partial[0] += 1
                    partial[1] += bullish
                    partial[2] += probability
                    partial[3] += tagged
                    partial[4] += agrees
                    versions = partial[5]
                    versions[version] = versions.get(version, 0) + 1
            if not counted:
                unusable.append((record, _late(event_ms, watermark)))
        if event_ms > watermark:
            watermark = event_ms
    out.consumed += count
    return watermark


def _late(event_ms: int, watermark: int) -> Unusable:
    behind_s = (watermark - event_ms) / 1000
    return Unusable(
        AggregatorDeadLetterReason.LATE,
        f"created_at {behind_s:.3f}s behind its partition's watermark: later than the grace "
        "for every window",
    )
