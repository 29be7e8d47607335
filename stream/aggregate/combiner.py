"""Partial aggregates: every figure of a window is a sum, so partial sums of any split of
the input add up to exactly the sums of the whole (counts exactly; the probability sum up
to floating-point rounding).

A partial is a list `[count, bullish, probability_sum, author_tagged, author_agree,
{model_version: count}]`, kept mutable so the hot loop adds in place.
"""

from __future__ import annotations

from typing import Any

WindowKey = tuple[str, int, int]  # (symbol, size_ms, start_ms)
Partial = list[Any]

COUNT, BULLISH, PROBABILITY_SUM, AUTHOR_TAGGED, AUTHOR_AGREE, MODEL_VERSIONS = range(6)


def empty_partial() -> Partial:
    """The partial of no records."""
    return [0, 0, 0.0, 0, 0, {}]


def add_partial(into: Partial, other: Partial) -> None:
    """Adds `other`'s sums to `into`."""
    into[COUNT] += other[COUNT]
    into[BULLISH] += other[BULLISH]
    into[PROBABILITY_SUM] += other[PROBABILITY_SUM]
    into[AUTHOR_TAGGED] += other[AUTHOR_TAGGED]
    into[AUTHOR_AGREE] += other[AUTHOR_AGREE]
    versions = into[MODEL_VERSIONS]
    for version, count in other[MODEL_VERSIONS].items():
        versions[version] = versions.get(version, 0) + count


def merge_into(partials: dict[WindowKey, Partial], key: WindowKey, other: Partial) -> Partial:
    """Adds `other` to the partial of `key` (created when absent); returns it."""
    current = partials.get(key)
    if current is None:
        current = partials[key] = empty_partial()
    add_partial(current, other)
    return current
