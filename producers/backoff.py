"""Exponential backoff with full jitter, and the circuit breaker for blocked answers.

Jitter spreads retries so that a restart of many producers (or symbols) does not hit a
recovering server in lock-step. The breaker stops all requests once the API answers with a
block page, because retrying while blocked only prolongs the block; after a cool-down one
trial request (half-open) decides whether to close it again or double the cool-down.
"""

from __future__ import annotations

import enum
import random
import time
from collections.abc import Callable


class Backoff:
    """Delay before retry n (0-based): uniform in [0, min(cap, base * 2**n)]."""

    def __init__(
        self,
        base_s: float = 1.0,
        cap_s: float = 300.0,
        *,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.base_s = base_s
        self.cap_s = cap_s
        self._rng = rng
        self.failures = 0

    def ceiling_s(self, attempt: int) -> float:
        """The largest delay attempt `attempt` may draw."""
        return float(min(self.cap_s, self.base_s * 2 ** min(attempt, 60)))

    def next_delay_s(self) -> float:
        """The delay after one more consecutive failure (full jitter)."""
        delay = self._rng() * self.ceiling_s(self.failures)
        self.failures += 1
        return delay

    def reset(self) -> None:
        """A success: the next failure starts from the base delay again."""
        self.failures = 0


class CircuitState(enum.Enum):
    """Closed: requests flow. Open: none. Half-open: one trial request."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Opens on a blocked answer; half-open after `cooldown_s`; cool-down doubles on repeat."""

    def __init__(
        self,
        cooldown_s: float = 900.0,
        max_cooldown_s: float = 4 * 3600.0,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base_cooldown_s = cooldown_s
        self.max_cooldown_s = max_cooldown_s
        self._clock = clock
        self._cooldown_s = cooldown_s
        self._opened_at: float | None = None

    @property
    def state(self) -> CircuitState:
        """The state now (open turns half-open once the cool-down has passed)."""
        if self._opened_at is None:
            return CircuitState.CLOSED
        if self._clock() - self._opened_at >= self._cooldown_s:
            return CircuitState.HALF_OPEN
        return CircuitState.OPEN

    def wait_s(self) -> float:
        """Seconds until a request may be tried (0 when closed or half-open)."""
        if self._opened_at is None:
            return 0.0
        return max(0.0, self._opened_at + self._cooldown_s - self._clock())

    def trip(self) -> None:
        """A blocked answer: open, or re-open with a longer cool-down after a failed trial."""
        if self._opened_at is not None and self.state is CircuitState.HALF_OPEN:
            self._cooldown_s = min(self.max_cooldown_s, self._cooldown_s * 2)
        self._opened_at = self._clock()

    def succeed(self) -> None:
        """An answer that was not a block page: close and forget the cool-down growth."""
        self._opened_at = None
        self._cooldown_s = self.base_cooldown_s
