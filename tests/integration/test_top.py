"""`stocksent top` and `stocksent tail --topic` on a real broker, reading window records
written by the aggregator's own record builder: the ranking, shares, changes and sparklines
of the first screens, a window that arrives while top runs, and the rows of tail."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from stocksent.service_process import REPO_ROOT
from stream.tail import WINDOW_HEADER, format_window_row
from stream.window_view import SPARK_GAP, spark_block
from tests.kafka_support import produce
from tests.window_support import BASE_MS, MINUTE_MS, keyed, record

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

HISTORY = 6  # longer than the "trend" heading: the sparkline ends right before the state
PREVIOUS = BASE_MS - MINUTE_MS
# symbol: [(window start, count, bullish)], the last one of each is in the current window
FINAL = {
    "AAPL": [(BASE_MS - 3 * MINUTE_MS, 10, 2), (PREVIOUS, 12, 3), (BASE_MS, 20, 15)],
    "TSLA": [(BASE_MS - 2 * MINUTE_MS, 5, 5), (BASE_MS, 30, 6)],
    "SPY": [(PREVIOUS, 4, 1), (BASE_MS, 20, 4)],
    "GME": [(PREVIOUS, 9, 9)],
}
HOUR_MS = 60 * MINUTE_MS


def window_records() -> list[tuple[bytes, bytes, None]]:
    """FINAL as final records, an early update of SPY before its final one, a record of the
    hour view and one that is not a window record."""
    records = [keyed("SPY", BASE_MS, 3, 3, final=False)]
    records += [keyed(s, *figures) for s, windows in FINAL.items() for figures in windows]
    records.append(keyed("NVDA", BASE_MS // HOUR_MS * HOUR_MS, 900, 450, size_ms=HOUR_MS))
    records.append((b"BAD", b"not a window", None))
    return records


def stocksent_args(bootstrap: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "stocksent.cli", *args, "--bootstrap-servers", bootstrap]


def run(bootstrap: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run(
        stocksent_args(bootstrap, *args),
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


Figures = dict[str, list[tuple[int, int, int]]]


def expected_row(figures: Figures, symbol: str, rank: int, current: int) -> tuple[list[str], str]:
    """(first five columns, the end of the line: sparkline and state) from `figures`."""
    held = {start: bullish / count for start, count, bullish in figures[symbol]}
    count = next(c for start, c, _ in figures[symbol] if start == current)
    previous = current - MINUTE_MS
    change = f"{(held[current] - held[previous]) * 100:+.1f}pp" if previous in held else "new"
    starts = [current - i * MINUTE_MS for i in reversed(range(HISTORY))]
    spark = "".join(spark_block(held[s]) if s in held else SPARK_GAP for s in starts)
    return [str(rank), symbol, str(count), f"{held[current]:.1%}", change], f"  {spark}  final"


def check_frame(
    frame: str, figures: Figures, current: int, ranked: list[str], symbols: int
) -> None:
    header, _columns, *rows = frame.splitlines()
    assert "window 60s" in header and f"{symbols} symbols" in header, header
    assert "(unreadable records skipped: 1)" in header
    assert [row.split()[1] for row in rows] == ranked
    for rank, (symbol, row) in enumerate(zip(ranked, rows, strict=True), 1):
        columns, end = expected_row(figures, symbol, rank, current)
        assert row.split()[:5] == columns, row
        assert row.endswith(end), (row, end)


def test_top_shows_the_current_window_ranked_from_the_first_screen(
    kafka_bootstrap: str, make_topic: Callable[..., str]
) -> None:
    topic = make_topic("by-symbol", 2)
    produce(kafka_bootstrap, topic, window_records())
    done = run(
        kafka_bootstrap, "top", "--topic", topic, "--history", str(HISTORY),
        "--refresh", "300ms", "--max-refreshes", "2",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "\033" not in done.stdout
    frames = done.stdout.rstrip("\n").split("\n\n")
    assert len(frames) == 2
    for frame in frames:
        check_frame(frame, FINAL, BASE_MS, ["TSLA", "AAPL", "SPY"], 3)


def _read_frame(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    lines = [process.stdout.readline()]
    if lines[0] == "\n":  # the blank line between frames
        lines = [process.stdout.readline()]
    symbols = int(lines[0].split(" symbols")[0].rsplit(maxsplit=1)[1])
    lines += [process.stdout.readline() for _ in range(symbols + 1)]
    return "".join(lines)


def test_top_shows_a_window_that_arrives_while_it_runs(
    kafka_bootstrap: str, make_topic: Callable[..., str]
) -> None:
    topic = make_topic("by-symbol", 2)
    produce(kafka_bootstrap, topic, window_records())
    args = stocksent_args(
        kafka_bootstrap, "top", "--topic", topic, "--history", str(HISTORY),
        "--refresh", "4s", "--max-refreshes", "2",
    )  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    with subprocess.Popen(args, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, text=True) as top:
        check_frame(_read_frame(top), FINAL, BASE_MS, ["TSLA", "AAPL", "SPY"], 3)
        following = BASE_MS + MINUTE_MS
        produce(kafka_bootstrap, topic, [keyed("AAPL", following, 7, 1)])
        figures = {**FINAL, "AAPL": [*FINAL["AAPL"], (following, 7, 1)]}
        check_frame(_read_frame(top), figures, following, ["AAPL"], 1)
        assert top.wait(timeout=30) == 0


def test_top_of_an_empty_topic_waits_and_of_a_missing_one_fails(
    kafka_bootstrap: str, make_topic: Callable[..., str]
) -> None:
    topic = make_topic("by-symbol", 1)
    done = run(kafka_bootstrap, "top", "--topic", topic, "--max-refreshes", "1")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"{topic}  window 60s", "waiting for windows ..."]
    missing = run(kafka_bootstrap, "top", "--topic", topic + ".missing")
    assert missing.returncode == 2 and missing.stdout == ""
    assert missing.stderr.strip().splitlines() == [
        f"stocksent top: error: topic '{topic}.missing' does not exist "
        "(create it: stocksent topics create)"
    ]


def test_tail_topic_shows_window_rows(kafka_bootstrap: str, make_topic: Callable[..., str]) -> None:
    topic = make_topic("by-symbol", 1)
    windows = [record("AAPL", BASE_MS, 20, 15), record("SPY", BASE_MS, 3, 3, final=False)]
    produce(kafka_bootstrap, topic, [(b"k", orjson.dumps(w), None) for w in windows])
    done = run(
        kafka_bootstrap, "tail", "--topic", topic, "--from-beginning",
        "--max-records", str(len(windows)),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [WINDOW_HEADER, *map(format_window_row, windows)]
    as_json = run(
        kafka_bootstrap, "tail", "--topic", topic, "--from-beginning", "--max-records", "2",
        "--json",
    )  # fmt: skip
    shown: list[Any] = [orjson.loads(line) for line in as_json.stdout.splitlines()]
    assert shown == windows


def start_top(bootstrap: str, topic: str) -> subprocess.Popen[str]:
    """`stocksent top` refreshing every 200 ms, its first line already written."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    top = subprocess.Popen(
        stocksent_args(bootstrap, "top", "--topic", topic, "--refresh", "200ms"),
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert top.stdout is not None
    assert "symbols" in top.stdout.readline()
    return top


@pytest.mark.parametrize("stop", ["reader leaves", "SIGTERM", "SIGHUP", "SIGINT"])
def test_top_stops_quietly(kafka_bootstrap: str, make_topic: Callable[..., str], stop: str) -> None:
    topic = make_topic("by-symbol", 2)
    produce(kafka_bootstrap, topic, window_records())
    with start_top(kafka_bootstrap, topic) as top:
        assert top.stdout is not None and top.stderr is not None
        if stop == "reader leaves":
            top.stdout.close()  # as `| head -1` does after its line
        else:
            top.send_signal(getattr(signal, stop))
        assert top.wait(timeout=30) == 0
        assert top.stderr.read() == ""
