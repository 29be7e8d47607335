"""`stocksent top` screens: the header and rows of a frame, plain frames when stdout is not a
terminal or NO_COLOR is set, redraw in place on a terminal, and its settings' errors."""

from __future__ import annotations

import io

import pytest

from common.options import SettingsError, parse_settings
from common.topics import BY_SYMBOL_TOPIC
from stream.aggregate.windows import iso_ms
from stream.top import CLEAR_SCREEN, Screen, TopSettings, format_frame
from stream.window_view import Board, Frame
from tests.window_support import BASE_MS, MINUTE_MS, value

ESC = "\033["


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def board_with_windows() -> Board:
    board = Board(history=3)
    for start, count, bullish in ((BASE_MS - MINUTE_MS, 10, 8), (BASE_MS, 20, 5)):
        board.add_value(value("AAPL", start, count, bullish))
    board.add_value(value("TSLA", BASE_MS, 4, 3, final=False))
    board.add_value(b"garbage")
    return board


def test_header_names_topic_view_window_and_symbols() -> None:
    board = board_with_windows()
    text = format_frame(board.frame(60, 10), "by-symbol", "60s", board.skipped)
    header, columns, *rows = text.splitlines()
    start = iso_ms(BASE_MS).replace("T", " ")[:19]
    end = iso_ms(BASE_MS + MINUTE_MS)[11:19]
    assert (
        header
        == f"by-symbol  window 60s  {start}–{end} UTC  2 symbols  (unreadable records skipped: 1)"
    )
    assert columns.split()[:5] == ["#", "symbol", "count", "bullish", "change"]
    aapl, tsla = rows
    assert aapl.split()[:5] == [
        "1",
        "AAPL",
        "20",
        f"{5 / 20:.1%}",
        f"{(5 / 20 - 8 / 10) * 100:+.1f}pp",
    ]
    assert aapl.endswith("  final")
    assert tsla.split()[:5] == ["2", "TSLA", "4", f"{3 / 4:.1%}", "new"]
    assert tsla.endswith("  early")
    assert aapl.index("final") == tsla.index("early") == columns.index("state")


def test_plain_unless_colour_is_asked() -> None:
    frame = board_with_windows().frame(60, 10)
    assert ESC not in format_frame(frame, "t", "60s")
    coloured = format_frame(frame, "t", "60s", colour=True)
    assert f"{ESC}31m" in coloured and f"{ESC}2mearly" in coloured


def test_an_empty_view_says_it_waits() -> None:
    assert format_frame(Frame(60, None, 0, ()), "t", "1h").splitlines() == [
        "t  window 1h",
        "waiting for windows ...",
    ]


def test_frames_on_a_pipe_are_plain_and_separated_by_a_blank_line() -> None:
    out = io.StringIO()
    screen = Screen(out)
    assert not screen.colour
    screen.show("one\nframe")
    screen.show("two")
    assert out.getvalue() == "one\nframe\n\ntwo\n"


def test_a_terminal_is_redrawn_in_place(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    out = Terminal()
    screen = Screen(out)
    screen.show("one")
    screen.show("two")
    assert out.getvalue() == f"{CLEAR_SCREEN}one\n{CLEAR_SCREEN}two\n"
    assert screen.colour


def test_no_color_on_a_terminal_means_no_colour(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    screen = Screen(Terminal())
    assert not screen.colour
    frame = board_with_windows().frame(60, 10)
    screen.show(format_frame(frame, "t", "60s", colour=screen.colour))
    assert ESC + "3" not in screen.out.getvalue() and ESC + "2m" not in screen.out.getvalue()


def test_defaults_and_environment() -> None:
    settings = parse_settings(TopSettings, [], "top", environ={})
    assert settings.topic == BY_SYMBOL_TOPIC
    assert (settings.window.ms, settings.refresh.ms, settings.max_refreshes) == (60_000, 1000, 0)
    assert settings.read_back_ms == (settings.history + 1) * 60_000
    from_env = parse_settings(
        TopSettings,
        ["--rows", "3"],
        "top",
        environ={"STOCKSENT_TOP_WINDOW": "1h", "STOCKSENT_TOP_ROWS": "9"},
    )
    assert (from_env.window.ms, from_env.window.name, from_env.rows) == (3_600_000, "1h", 3)


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--window", "500ms"], "--window: '500ms' is not valid"),
        (["--window", "soon"], "--window: 'soon' is not valid"),
        (["--rows", "0"], "--rows: '0' is not valid"),
        (["--history", "0"], "--history: '0' is not valid"),
        (["--refresh", "0"], "--refresh: '0' is not valid"),
        (["--max-refreshes", "-1"], "--max-refreshes: '-1' is not valid"),
        (["--topic", " "], "--topic: ' ' is not valid"),
    ],
)
def test_bad_settings_are_named(argv: list[str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        parse_settings(TopSettings, argv, "top", environ={})
