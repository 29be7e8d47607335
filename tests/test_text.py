"""Text normalisation (model/text.py): one case table per entity kind, plus properties."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

# model.text, .network, .serving ... import TensorFlow: imported inside the tests, so that
# collecting this module (make test-unit deselects it) does not load it
pytestmark = pytest.mark.tensorflow

CASES = [
    # cashtags: symbol kept behind the entity prefix, dots folded
    ("tickers", "$SPY to the moon", "_ticker_spy to the moon"),
    ("tickers", "$BRK.B and $BTC.X", "_ticker_brkb and _ticker_btcx"),
    ("tickers", "long $aapl", "long _ticker_aapl"),
    # users
    ("users", "@trader_1 you are wrong", "_user_ you are wrong"),
    ("users", "cc @Joe", "cc _user_"),
    # links
    ("urls", "read https://t.co/AbC?x=1 now", "read _url_ now"),
    ("urls", "see www.example.com/page", "see _url_"),
    ("urls", "http://bloom.bg/2wK2tH2", "_url_"),
    # prices
    ("prices", "sold at $250.50", "sold at _price_"),
    ("prices", "target $ 2,500", "target _price_"),
    ("prices", "$5k profit", "_price_ profit"),
    # percentages
    ("percentages", "up 2.5% today", "up _pct_ today"),
    ("percentages", "down -3 % now", "down _pct_ now"),
    # numbers
    ("numbers", "2017 was great", "_num_ was great"),
    ("numbers", "250c expiring", "_num_ c expiring"),
    ("numbers", "1,000,000 shares", "_num_ shares"),
    # html entities
    ("entities", "AT&amp;T &lt;3", "at t _num_"),
    ("entities", "don&#39;t &quot;panic&quot;", "dont panic"),
    ("entities", "it&#x27;s &apos;fine&apos;", "its fine"),
    # punctuation, ! and ?
    ("punctuation", "Wow!!! Really???", "wow ! really ?"),
    ("punctuation", "well... ok, fine; (maybe)", "well ok fine maybe"),
    ("punctuation", "don't", "dont"),
    # emoji and smileys
    ("emoji", "🚀🚀 moon", "🚀 🚀 moon"),
    ("emoji", "bear 🐻!", "bear 🐻 !"),
    ("smileys", "good :) day", "good _smile_ day"),
    ("smileys", "ugh :( red", "ugh _frown_ red"),
    # case and unicode
    ("case", "BUY Now", "buy now"),
    ("case", "Ünïcode Ça", "ünïcode ça"),
    # empty and whitespace
    ("empty", "", ""),
    ("empty", " \t\n ", ""),
    ("empty", "...", ""),
]


@pytest.mark.parametrize(
    ("kind", "raw", "expected"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)]
)
def test_normalize_cases(kind: str, raw: str, expected: str) -> None:
    from model.text import normalize

    assert normalize(raw) == expected, kind


def test_lone_surrogates_are_replaced_not_fatal() -> None:
    from model.text import normalize

    assert normalize("bull \ud800 run \udfff") == "bull run"


def test_invalid_utf8_bytes_are_replaced() -> None:
    from model.text import normalize

    assert normalize(b"bull \xff\xfe run") == "bull run"


def test_long_text_is_truncated_quickly() -> None:
    import time

    from model.text import MAX_INPUT_BYTES, normalize

    text = "$SPY moon 🚀 " * 10_000  # ~130 KB
    start = time.perf_counter()
    out = normalize(text)
    assert time.perf_counter() - start < 2.0
    assert len(out.encode()) <= MAX_INPUT_BYTES * 2


def test_tokens_are_capped() -> None:
    from model.text import MAX_TOKENS, tokenize

    (tokens,) = tokenize(["word " * 500])
    assert len(tokens) == MAX_TOKENS


def test_tokenize_batch_matches_normalize() -> None:
    from model.text import normalize, tokenize

    texts = ["$SPY up 2%!", "", "@a b"]
    assert [" ".join(t) for t in tokenize(texts)] == [normalize(t) for t in texts]
    assert tokenize([]) == []


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# exclude_categories=() lets lone surrogates (category Cs) in too.
@given(st.text(alphabet=st.characters(exclude_categories=()), max_size=300))
def test_any_unicode_string_normalises(text: str) -> None:
    from model.text import normalize

    out = normalize(text)
    out.encode("utf-8")  # valid UTF-8: no surrogates survive
    assert out == out.strip()
    assert "  " not in out
