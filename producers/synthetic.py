"""Synthetic StockTwits-shaped messages, written by this project (no copied data).

Templates of bullish, bearish and neutral phrasing are filled with tickers, prices and
percentages; about a third of the opinionated messages carry the author's own tag in
`entities.sentiment`, like real traffic. Ids increase from a start derived from the clock,
so two runs do not reuse ids; a seed makes the texts reproducible.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from typing import Any

from producers.messages import iso_utc

TICKERS = ("SPY", "AAPL", "TSLA", "NVDA", "AMZN", "MSFT", "QQQ", "AMD", "META", "GOOGL")

BULLISH = (
    "${t} breaking out, loading more calls for ${p}",
    "${t} higher lows all week, this runs to ${p} easily",
    "bought the dip on ${t} at ${p}, earnings will crush it",
    "${t} up {n}% premarket and still cheap. long and strong",
    "${t} golden cross on the daily, bulls in control",
    "added to my ${t} position, target ${p} by Friday",
)
BEARISH = (
    "${t} rejected at ${p} again, puts are printing",
    "${t} lower highs, this dumps to ${p} next",
    "sold all my ${t}, guidance looks terrible",
    "${t} down {n}% and it is not done falling",
    "${t} death cross forming, shorting every bounce",
    "${t} overbought, took profits and bought puts for ${p}",
)
NEUTRAL = (
    "${t} volume is light today",
    "what is everyone watching on ${t} into the close?",
    "${t} and ${u} moving together again",
    "${t} options chain looks interesting for next week",
)


class SyntheticMessages:
    """An endless iterator of generated message objects."""

    def __init__(
        self,
        *,
        seed: int | None = None,
        start_id: int | None = None,
        tickers: tuple[str, ...] = TICKERS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._rng = random.Random(seed)
        self._clock = clock
        self._tickers = tickers
        # Far above real StockTwits ids (about 7e8 in 2026) so they can never collide.
        self._next_id = start_id if start_id is not None else 10**15 + int(clock() * 1000) * 100

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return self

    def __next__(self) -> dict[str, Any]:
        rng = self._rng
        kind = rng.choices(("bullish", "bearish", "neutral"), weights=(5, 4, 2))[0]
        templates = {"bullish": BULLISH, "bearish": BEARISH, "neutral": NEUTRAL}[kind]
        ticker, other = rng.sample(self._tickers, 2)
        body = (
            rng.choice(templates)
            .replace("{t}", ticker)
            .replace("{u}", other)
            .replace("{p}", f"{rng.uniform(20, 900):.2f}")
            .replace("{n}", str(rng.randint(1, 12)))
        )
        tagged = kind != "neutral" and rng.random() < 0.35
        symbols = [ticker, other] if f"${other}" in body else [ticker]
        ident = self._next_id
        self._next_id += 1
        user_id = rng.randint(1, 5000)
        return {
            "id": ident,
            "body": body,
            "created_at": iso_utc(self._clock()),
            "user": {"id": user_id, "username": f"synthetic_trader_{user_id}"},
            "source": {"id": 0, "title": "stocksent synthetic", "url": None},
            "symbols": [{"symbol": s} for s in symbols],
            "entities": {"sentiment": {"basic": kind.capitalize()} if tagged else None},
        }
