"""stocksent.live_view: output that survives a reader that left, and the row limit."""

from __future__ import annotations

import io
import os

from stocksent.live_view import RowLimiter, Screen


def test_a_closed_pipe_ends_the_output_without_raising() -> None:
    read_end, write_end = os.pipe()
    out = os.fdopen(write_end, "w")
    screen = Screen(out, io.StringIO())
    screen.say("first")
    assert os.read(read_end, 100) == b"first\n"
    os.close(read_end)  # `| head` has what it wanted
    screen.say("second")  # EPIPE: no BrokenPipeError
    assert screen.closed
    screen.say("third")  # and nothing more is tried
    screen.warn("stderr still works")
    out.close()  # the descriptor now points at /dev/null: closing raises nothing either


def test_rows_are_limited_to_the_rate_and_the_rest_counted() -> None:
    limiter = RowLimiter(4)
    shown = sum(limiter.allow() for _ in range(50))  # a burst within one second
    assert shown == 4
    assert limiter.hidden == 46
