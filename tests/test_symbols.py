"""common.symbols: one normalisation for watchlists, cashtags and metric labels."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from common.symbols import normalise_symbol, symbol_list


def test_a_symbol_is_trimmed_upper_cased_and_loses_one_cashtag_dollar() -> None:
    assert normalise_symbol(" $aapl ") == "AAPL"
    assert normalise_symbol("btc.x") == "BTC.X"


def test_a_list_drops_blanks_and_duplicates_and_refuses_what_is_no_ticker() -> None:
    assert symbol_list("$spy, aapl,,SPY") == ("SPY", "AAPL")
    with pytest.raises(ValueError, match="is not a ticker symbol"):
        symbol_list("S P Y")


def test_the_classifier_labels_a_record_symbol_as_its_watchlist_spells_it() -> None:
    from stream.metrics import ClassifierMetrics

    metrics = ClassifierMetrics(CollectorRegistry(), symbol_list("spy"))
    assert metrics.symbol_label("$spy") == "SPY"
    assert metrics.symbol_label("QQQ") == "other"
