"""`stocksent top`: the symbols by volume in the current window of `stocksent aggregate`'s
output, with bullish share, change against the previous window and a sparkline of the
share, refreshed in the terminal.

The current window is the latest window start seen for the chosen view (`--window`); a row
shows that window's latest record, `final` or `early` (an update before the window
closed). At start it reads back the windows of the last `--history` windows (by record
time) before the first screen, so the sparklines are already filled. On a terminal each
refresh redraws the screen in place; when stdout is not a terminal each refresh prints one
plain frame, frames separated by a blank line. Colour only on a terminal and without
`NO_COLOR`. Reads like `stocksent tail`: without a consumer group, `read_committed`.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Any, ClassVar, TextIO

from common.kafka_settings import KafkaConnection
from common.options import (
    group,
    int_between,
    non_empty_text,
    non_negative_int,
    parse_settings,
    setting,
)
from common.preflight import check_kafka
from common.topics import BY_SYMBOL_TOPIC
from stream.aggregate.durations import Duration, duration, window_duration
from stream.tail import StopSignals, open_consumer, paint, use_colour, utc_time
from stream.window_view import Board, Frame, Row

CLEAR_SCREEN = "\033[H\033[2J"  # cursor home, clear the screen
CATCH_UP_S = 10.0  # at most this long reading back history before the first screen
MIN_REFRESH_MS = 100


def refresh_interval(text: str) -> Duration:
    """A duration of at least MIN_REFRESH_MS."""
    value = duration(text)
    if value.ms < MIN_REFRESH_MS:
        raise ValueError(f"must be at least {MIN_REFRESH_MS}ms")
    return value


@dataclass(frozen=True)
class TopSettings:
    """Settings of `stocksent top`."""

    env_prefix: ClassVar[str] = "top_"

    kafka: KafkaConnection = group(KafkaConnection)
    topic: str = setting(
        non_empty_text,
        BY_SYMBOL_TOPIC,
        "topic of per-symbol windows (stocksent aggregate's --output-topic)",
    )
    window: Duration = setting(
        window_duration,
        "60s",
        "the view shown: windows of this size (stocksent aggregate's --window or --long-window)",
    )
    rows: int = setting(int_between(1, 1000), 20, "symbols shown")
    history: int = setting(
        int_between(1, 200), 15, "windows in each sparkline, the current one included",
    )  # fmt: skip
    refresh: Duration = setting(refresh_interval, "1s", "time between two screens")
    max_refreshes: int = setting(
        non_negative_int, 0, "stop after this many screens (0 = until stopped)",
    )  # fmt: skip

    @property
    def read_back_ms(self) -> int:
        """How far back (by record time) to start: the history, and one window more for
        the change of the oldest window shown."""
        return (self.history + 1) * self.window.ms


def _change(row: Row, colour: bool) -> str:
    if row.change_pp is None:
        return f"{'new':>8}"
    text = f"{row.change_pp:>+6.1f}pp"
    shown = "bullish" if row.change_pp > 0 else "bearish" if row.change_pp < 0 else None
    return paint(text, shown, colour)


def format_frame(
    frame: Frame, topic: str, view: str, skipped: int = 0, colour: bool = False
) -> str:
    """One screen: a header (topic, view, the current window, symbols in it), then a row
    per symbol, or "waiting for windows ..." when there is no window of the view yet."""
    head = f"{topic}  window {view}"
    unreadable = f"  (unreadable records skipped: {skipped})" if skipped else ""
    if frame.start_ms is None:
        return f"{head}{unreadable}\nwaiting for windows ..."
    end_ms = frame.start_ms + frame.seconds * 1000
    start, end = utc_time(frame.start_ms), utc_time(end_ms)
    end = end[11:] if end[:10] == start[:10] else end
    trend = max([len("trend")] + [len(row.sparkline) for row in frame.rows])
    lines = [
        f"{head}  {start}–{end} UTC  {frame.symbols} symbols{unreadable}",
        f"{'#':>3} {'symbol':<8} {'count':>6} {'bullish':>7} {'change':>8}  "
        f"{'trend':<{trend}}  state",
    ]
    for rank, row in enumerate(frame.rows, 1):
        state = "final" if row.final else paint("early", "dim", colour)
        lines.append(
            f"{rank:>3} {row.symbol:<8} {row.count:>6} {row.bullish_share:>7.1%} "
            f"{_change(row, colour)}  {row.sparkline:<{trend}}  {state}"
        )
    return "\n".join(lines)


class Screen:
    """Shows frames: redrawn in place on a terminal, else one after another with a blank
    line between."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.in_place = out.isatty()
        self.colour = use_colour(out)
        self.shown = 0

    def show(self, text: str) -> None:
        if self.in_place:
            self.out.write(CLEAR_SCREEN + text + "\n")
        else:
            self.out.write(("\n" if self.shown else "") + text + "\n")
        self.out.flush()
        self.shown += 1


def read_until(consumer: Any, board: Board, deadline: float, signals: StopSignals) -> None:
    """Reads window records into `board` until the monotonic `deadline`."""
    while not signals.stopping:
        left_ms = int((deadline - time.monotonic()) * 1000)
        if left_ms <= 0:
            return
        for records in consumer.poll(timeout_ms=min(left_ms, 500)).values():
            for record in records:
                board.add_value(record.value)


def catch_up(consumer: Any, board: Board, deadline: float, signals: StopSignals) -> None:
    """Reads what the topic held at start (up to its committed end) into `board`, or until
    the monotonic `deadline`."""
    ends = consumer.end_offsets(list(consumer.assignment()))
    while not signals.stopping and time.monotonic() < deadline:
        if all(consumer.position(tp) >= end for tp, end in ends.items()):
            return
        read_until(consumer, board, min(deadline, time.monotonic() + 0.2), signals)


def watch(settings: TopSettings, out: TextIO = sys.stdout) -> int:
    """Shows a screen every `refresh` until interrupted or `max_refreshes` screens."""
    since_ms = max(1, int(time.time() * 1000) - settings.read_back_ms)
    consumer = open_consumer(settings.kafka, settings.topic, since_ms=since_ms)
    board = Board(settings.history)
    screen = Screen(out)
    seconds, interval = settings.window.ms // 1000, settings.refresh.ms / 1000
    try:
        with StopSignals() as signals:
            catch_up(consumer, board, time.monotonic() + CATCH_UP_S, signals)
            next_at = time.monotonic()
            while not signals.stopping:
                frame = board.frame(seconds, settings.rows)
                text = format_frame(
                    frame, settings.topic, settings.window.name, board.skipped, screen.colour
                )
                screen.show(text)
                if settings.max_refreshes and screen.shown >= settings.max_refreshes:
                    break
                next_at += interval
                if next_at < time.monotonic():  # behind (a slow terminal): skip, don't rush
                    next_at = time.monotonic() + interval
                read_until(consumer, board, next_at, signals)
    except KeyboardInterrupt:
        pass
    finally:
        consumer.close()
    return 0


def main(argv: list[str], prog: str = "stocksent top") -> int:
    """Entry point of `stocksent top`."""
    settings = parse_settings(TopSettings, argv, prog, __doc__)  # stocksent.cli: exit 2
    check_kafka(settings.kafka)
    return watch(settings)
