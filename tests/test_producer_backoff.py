"""Exponential backoff with full jitter, and the circuit breaker's open/half-open/closed cycle."""

from __future__ import annotations

from producers.backoff import Backoff, CircuitBreaker, CircuitState


def test_backoff_grows_exponentially_up_to_the_cap() -> None:
    backoff = Backoff(base_s=1.0, cap_s=30.0, rng=lambda: 1.0)  # the top of each jitter range
    assert [backoff.next_delay_s() for _ in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    backoff.reset()
    assert backoff.next_delay_s() == 1


def test_backoff_is_jittered_within_its_range() -> None:
    draws = iter([0.0, 0.5, 0.25])
    backoff = Backoff(base_s=2.0, cap_s=100.0, rng=lambda: next(draws))
    assert [backoff.next_delay_s() for _ in range(3)] == [0.0, 2.0, 2.0]


def test_breaker_opens_half_opens_and_closes() -> None:
    now = [0.0]
    breaker = CircuitBreaker(cooldown_s=100, clock=lambda: now[0])
    assert breaker.state is CircuitState.CLOSED and breaker.wait_s() == 0
    breaker.trip()
    assert breaker.state is CircuitState.OPEN and breaker.wait_s() == 100
    now[0] = 100
    assert breaker.state is CircuitState.HALF_OPEN and breaker.wait_s() == 0
    breaker.succeed()
    assert breaker.state is CircuitState.CLOSED


def test_a_failed_trial_doubles_the_cooldown_up_to_the_max() -> None:
    now = [0.0]
    breaker = CircuitBreaker(cooldown_s=100, max_cooldown_s=300, clock=lambda: now[0])
    breaker.trip()
    waits = []
    for _ in range(4):
        now[0] += breaker.wait_s()  # cool-down over: half-open, the trial is blocked again
        breaker.trip()
        waits.append(breaker.wait_s())
    assert waits == [200, 300, 300, 300]
    breaker.succeed()
    breaker.trip()
    assert breaker.wait_s() == 100  # a success forgets the growth
