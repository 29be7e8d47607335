"""Ticker symbols: the one normalisation every part applies (the producer's watchlist and
cashtags, the classifier's and producer's metric labels, the learner)."""

from __future__ import annotations

from common.options import comma_list


def normalise_symbol(symbol: str) -> str:
    """`$aapl ` -> `AAPL`: surrounding blanks and a leading cashtag `$` dropped, upper case."""
    return symbol.strip().removeprefix("$").upper()


def symbol_list(value: str) -> tuple[str, ...]:
    """Comma-separated ticker symbols, normalised, duplicates dropped, in the given order."""
    symbols = tuple(dict.fromkeys(normalise_symbol(s) for s in comma_list(value)))
    for symbol in symbols:
        if not symbol.replace(".", "").replace("-", "").isalnum():
            raise ValueError(f"{symbol!r} is not a ticker symbol")
    return symbols
