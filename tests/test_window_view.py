"""The board behind `stocksent top`: window records read and checked, the latest record of
each window kept, the current window ranked by volume with change and sparkline, and memory
bounded by the history."""

from __future__ import annotations

import orjson
import pytest

from stream.window_view import (
    SPARK_BLOCKS,
    SPARK_GAP,
    Board,
    parse_window,
    spark_block,
    window_length,
)
from tests.window_support import BASE_MS, MINUTE_MS, record, value

HOUR_MS = 60 * MINUTE_MS


def test_a_record_of_the_builder_reads_back() -> None:
    built = record("AAPL", BASE_MS, 8, 3, final=False)
    window = parse_window(orjson.loads(value("AAPL", BASE_MS, 8, 3, final=False)))
    assert (window.symbol, window.start_ms, window.seconds) == ("AAPL", BASE_MS, 60)
    assert window.end_ms == BASE_MS + MINUTE_MS
    assert (window.count, window.final) == (8, False)
    assert window.bullish_share == built["bullish_share"] == 3 / 8
    assert window.mean_probability == built["mean_probability"]


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"symbol": ""}, "symbol"),
        ({"symbol": 7}, "symbol"),
        ({"window_start": "yesterday"}, "window_start"),
        ({"window_seconds": 0}, "window_seconds"),
        ({"count": 0}, "count"),
        ({"count": True}, "count"),
        ({"bullish_share": 1.5}, "bullish_share"),
        ({"bullish_share": "0.5"}, "bullish_share"),
        ({"mean_probability": None}, "mean_probability"),
        ({"final": "yes"}, "final"),
    ],
)
def test_a_bad_field_is_named(change: dict[str, object], named: str) -> None:
    bad = {**record("AAPL", BASE_MS, 4, 1), **change}
    with pytest.raises(ValueError, match=named):
        parse_window(bad)


def test_bad_records_are_skipped_and_counted() -> None:
    board = Board(history=3)
    bad = [None, b"", b"not json", b"[1, 2]", b'{"symbol": "AAPL"}', b"\xff\xfe"]
    missing = orjson.dumps({k: v for k, v in record("X", BASE_MS, 1, 1).items() if k != "count"})
    for raw in [*bad, missing]:
        assert board.add_value(raw) is False
    assert board.add_value(value("AAPL", BASE_MS, 4, 1)) is True
    assert board.skipped == len(bad) + 1
    assert [row.symbol for row in board.frame(60, 10).rows] == ["AAPL"]


def test_rows_by_count_with_share_change_and_sparkline() -> None:
    history = 4
    board = Board(history)
    previous = BASE_MS - MINUTE_MS
    figures = {  # symbol: [(window start, count, bullish)]
        "AAPL": [(BASE_MS - 3 * MINUTE_MS, 10, 2), (previous, 12, 3), (BASE_MS, 20, 15)],
        "TSLA": [(BASE_MS - 2 * MINUTE_MS, 5, 5), (BASE_MS, 30, 6)],  # no previous window
        "SPY": [(previous, 4, 1), (BASE_MS, 20, 4)],  # ties AAPL on count: by name
        "GME": [(previous, 9, 9)],  # nothing in the current window: not shown
    }
    for symbol, windows in figures.items():
        for start, count, bullish in windows:
            board.add_value(value(symbol, start, count, bullish))
    frame = board.frame(60, 10)
    assert (frame.seconds, frame.start_ms, frame.symbols) == (60, BASE_MS, 3)
    assert [row.symbol for row in frame.rows] == ["TSLA", "AAPL", "SPY"]
    for row in frame.rows:
        held = {start: bullish / count for start, count, bullish in figures[row.symbol]}
        assert row.count == next(c for s, c, _ in figures[row.symbol] if s == BASE_MS)
        assert row.bullish_share == held[BASE_MS]
        if previous in held:
            assert row.change_pp == pytest.approx((held[BASE_MS] - held[previous]) * 100)
        else:
            assert row.change_pp is None
        starts = [BASE_MS - i * MINUTE_MS for i in reversed(range(history))]
        expected = [spark_block(held[s]) if s in held else SPARK_GAP for s in starts]
        assert row.sparkline == "".join(expected)
        assert row.final
    assert [row.symbol for row in board.frame(60, 2).rows] == ["TSLA", "AAPL"]
    assert board.frame(60, 2).symbols == 3


def test_a_later_record_of_a_window_replaces_the_earlier() -> None:
    board = Board(history=2)
    board.add_value(value("AAPL", BASE_MS, 3, 3, final=False))
    (early,) = board.frame(60, 5).rows
    assert (early.count, early.bullish_share, early.final) == (3, 1.0, False)
    board.add_value(value("AAPL", BASE_MS, 8, 2, final=True))
    (final,) = board.frame(60, 5).rows
    assert (final.count, final.bullish_share, final.final) == (8, 2 / 8, True)
    assert board.windows_held() == 1


def test_the_current_window_is_the_latest_start_even_when_records_come_out_of_order() -> None:
    board = Board(history=3)
    board.add_value(value("AAPL", BASE_MS, 5, 1))
    board.add_value(value("TSLA", BASE_MS - MINUTE_MS, 7, 7))  # later, for an earlier window
    frame = board.frame(60, 5)
    assert frame.start_ms == BASE_MS
    assert [row.symbol for row in frame.rows] == ["AAPL"]


def test_views_are_kept_apart() -> None:
    board = Board(history=3)
    hour = BASE_MS // HOUR_MS * HOUR_MS
    board.add_value(value("AAPL", BASE_MS, 5, 1))
    board.add_value(value("AAPL", hour, 300, 200, size_ms=HOUR_MS))
    board.add_value(value("NVDA", hour - HOUR_MS, 100, 50, size_ms=HOUR_MS))
    minute, hourly = board.frame(60, 5), board.frame(3600, 5)
    assert (minute.start_ms, [(r.symbol, r.count) for r in minute.rows]) == (
        BASE_MS,
        [("AAPL", 5)],
    )
    assert (hourly.start_ms, [(r.symbol, r.count) for r in hourly.rows]) == (hour, [("AAPL", 300)])
    assert board.frame(300, 5).start_ms is None


def test_memory_is_bounded_by_the_history() -> None:
    history, symbols, windows = 5, ("AAPL", "TSLA", "SPY"), 500
    board = Board(history)
    for i in range(windows):
        for n, symbol in enumerate(symbols):
            board.add_value(value(symbol, BASE_MS + i * MINUTE_MS, n + i % 7 + 1, n))
    assert board.windows_held() == history * len(symbols)
    current = BASE_MS + (windows - 1) * MINUTE_MS
    board.add_value(value("OLD", current - history * MINUTE_MS, 50, 1))  # out of the history
    assert board.windows_held() == history * len(symbols)
    board.add_value(value("NEW", current + 100 * MINUTE_MS, 1, 1))  # the others all fall out
    assert board.windows_held() == 1
    assert [row.sparkline for row in board.frame(60, 5).rows] == [
        SPARK_GAP * (history - 1) + spark_block(1.0)
    ]


def test_history_of_one_still_shows_the_change() -> None:
    board = Board(history=1)
    board.add_value(value("AAPL", BASE_MS - MINUTE_MS, 4, 1))
    board.add_value(value("AAPL", BASE_MS, 4, 3))
    (row,) = board.frame(60, 5).rows
    assert row.change_pp == pytest.approx((3 / 4 - 1 / 4) * 100)
    assert row.sparkline == spark_block(3 / 4)
    with pytest.raises(ValueError):
        Board(history=0)


def test_spark_blocks_rise_with_the_share_from_lowest_to_full() -> None:
    shares = [i / 1000 for i in range(1001)]
    blocks = [SPARK_BLOCKS.index(spark_block(share)) for share in shares]
    assert blocks == sorted(blocks)
    assert set(blocks) == set(range(len(SPARK_BLOCKS)))
    assert (spark_block(0.0), spark_block(1.0)) == (SPARK_BLOCKS[0], SPARK_BLOCKS[-1])


def test_window_length_in_the_largest_whole_unit() -> None:
    assert [window_length(s) for s in (60, 3600, 300, 90, 7200, 1)] == [
        "1m",
        "1h",
        "5m",
        "90s",
        "2h",
        "1s",
    ]
