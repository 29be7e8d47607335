"""The request budget: evenly spaced, never more than N requests in any hour, and stricter
when the server's headers or a 429 say so. Time is simulated with an injected clock."""

from __future__ import annotations

import itertools
from collections import deque

from hypothesis import given, settings
from hypothesis import strategies as st

from producers.budget import WINDOW_S, RequestBudget
from producers.stocktwits_api import RateLimit

WALL_OFFSET = 1_800_000_000.0  # the fake wall clock = monotonic + this


class FakeClock:
    """Monotonic seconds that only move when a test sleeps."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def wall(self) -> float:
        return self.now + WALL_OFFSET

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def make_budget(per_hour: int, clock: FakeClock) -> RequestBudget:
    return RequestBudget(per_hour, clock=clock, wall_clock=clock.wall)


def max_in_any_hour(times: list[float]) -> int:
    window: deque[float] = deque()
    worst = 0
    for t in times:
        window.append(t)
        while window[0] + WINDOW_S <= t:  # the same arithmetic as the budget
            window.popleft()
        worst = max(worst, len(window))
    return worst


def wait_for_budget(budget: RequestBudget, clock: FakeClock) -> None:
    """Sleeps until the budget allows a request, as the poller does (asking again after each
    sleep, since a float sum can land a hair before the due time)."""
    while (wait := budget.wait_s()) > 0:
        clock.sleep(wait)


def greedy_requests(budget: RequestBudget, clock: FakeClock, until: float) -> list[float]:
    """A client that sends as fast as the budget allows during [now, until)."""
    times = []
    while True:
        wait = budget.wait_s()
        if clock.now + wait >= until:
            return times
        wait_for_budget(budget, clock)
        budget.record()
        times.append(clock.now)


def test_an_hour_never_exceeds_the_budget_and_is_evenly_spaced() -> None:
    clock = FakeClock()
    budget = make_budget(200, clock)
    times = greedy_requests(budget, clock, until=WINDOW_S)
    assert len(times) == 200
    gaps = {round(b - a, 6) for a, b in itertools.pairwise(times)}
    assert gaps == {18.0}  # 3600 / 200, evenly spread
    # Over a longer run too, no sliding hour holds more than the budget.
    times += greedy_requests(budget, clock, until=5 * WINDOW_S)
    assert max_in_any_hour(times) <= 200


def test_greedy_use_never_exceeds_any_budget_over_four_hours() -> None:
    """Every budget from 1 to 400 an hour, used as fast as allowed: never one request too
    many in any sliding hour (spacing alone fails this for most budgets by float rounding)."""
    for per_hour in range(1, 401):
        clock = FakeClock()
        times = greedy_requests(make_budget(per_hour, clock), clock, until=4 * WINDOW_S)
        assert max_in_any_hour(times) <= per_hour, per_hour
        assert len(times) == 4 * per_hour


@settings(max_examples=200, deadline=None)
@given(
    per_hour=st.integers(min_value=1, max_value=400),
    delays=st.lists(st.floats(min_value=0, max_value=400), min_size=1, max_size=300),
    delays_from_backoff=st.lists(st.floats(min_value=0, max_value=120), max_size=20),
)
def test_no_sliding_hour_exceeds_the_budget(
    per_hour: int, delays: list[float], delays_from_backoff: list[float]
) -> None:
    """Whatever the caller's own pauses and backoffs, the budget is never exceeded."""
    clock = FakeClock()
    budget = make_budget(per_hour, clock)
    times = []
    for index, pause in enumerate(delays):
        clock.sleep(pause)
        if index < len(delays_from_backoff):
            budget.delay(delays_from_backoff[index])
        wait_for_budget(budget, clock)
        budget.record()
        times.append(clock.now)
    assert max_in_any_hour(times) <= per_hour
    assert all(b - a >= 3600 / per_hour - 1e-6 for a, b in itertools.pairwise(times))


def test_a_burst_after_idling_is_still_spaced() -> None:
    clock = FakeClock()
    budget = make_budget(100, clock)
    budget.record()
    clock.sleep(10_000)
    assert budget.wait_s() == 0
    budget.record()
    assert budget.wait_s() == 36.0


def test_server_remaining_spreads_requests_until_its_reset() -> None:
    clock = FakeClock()
    budget = make_budget(200, clock)
    budget.record()
    # The server says 10 left for the next 1000 s: one per 100 s, slower than our 18 s.
    budget.observe(RateLimit(200, 10, clock.wall() + 1000))
    assert budget.wait_s() == 100.0
    assert budget.remaining() == 10


def test_server_remaining_zero_waits_for_the_reset() -> None:
    clock = FakeClock()
    budget = make_budget(200, clock)
    budget.record()
    budget.observe(RateLimit(200, 0, clock.wall() + 500))
    assert budget.wait_s() == 500.0
    assert budget.remaining() == 0
    clock.sleep(500)
    assert budget.wait_s() == 0
    assert budget.remaining() == 199  # the server's window rolled over; ours still counts one


def test_429_blocks_until_reset_or_fallback() -> None:
    clock = FakeClock()
    budget = make_budget(3600, clock)
    assert budget.block_until_reset(RateLimit(reset_at=clock.wall() + 120), fallback_s=5) == 120
    assert budget.wait_s() == 120
    clock.sleep(120)
    assert budget.block_until_reset(RateLimit(), fallback_s=7.5) == 7.5
    assert budget.wait_s() == 7.5


def test_headers_without_remaining_change_nothing() -> None:
    clock = FakeClock()
    budget = make_budget(200, clock)
    budget.observe(RateLimit())
    assert budget.wait_s() == 0
    assert budget.remaining() == 200
