"""The request budget shared by every symbol: N requests an hour, evenly spaced.

Two rules hold at once, so a burst can never exceed the budget:
- spacing: consecutive requests are at least `3600 / requests_per_hour` seconds apart;
- window: at most `requests_per_hour` requests in any sliding 3600-second window. Spacing
  alone nearly implies it, but N intervals summed in floating point can come out a hair
  under an hour; the window makes the guarantee exact.

On top of that the server's own view wins when it is stricter: `X-RateLimit-Remaining`
spreads the remaining requests evenly until `X-RateLimit-Reset`, `Remaining: 0` waits for the
reset, and a 429 blocks every request until the reset (`block_until`).

The clock is injected (`clock()` in seconds, monotonic), so tests run an hour in a millisecond.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from producers.stocktwits_api import RateLimit

WINDOW_S = 3600.0


class RequestBudget:
    """Decides when the next API request may start; `record()` each request actually sent."""

    def __init__(
        self,
        requests_per_hour: int = 200,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if requests_per_hour < 1:
            raise ValueError(f"requests_per_hour must be >= 1, got {requests_per_hour}")
        self.requests_per_hour = requests_per_hour
        self.interval_s = WINDOW_S / requests_per_hour
        self._clock = clock
        self._wall_clock = wall_clock
        self._sent: deque[float] = deque()
        self._not_before = float("-inf")
        self._server_remaining: int | None = None
        self._server_reset_at: float | None = None  # on our monotonic clock

    def wait_s(self) -> float:
        """Seconds until a request is allowed (0 = now). Sleep, then ask again before sending."""
        now = self._clock()
        self._expire(now)
        ready = self._not_before
        if self._sent:
            ready = max(ready, self._sent[-1] + self._spacing(now))
            if len(self._sent) >= self.requests_per_hour:
                ready = max(ready, self._sent[0] + WINDOW_S)
        if self._server_remaining == 0 and self._server_reset_at is not None:
            ready = max(ready, self._server_reset_at)
        return max(0.0, ready - now)

    def record(self) -> None:
        """Counts one request sent now; call exactly once per HTTP request."""
        now = self._clock()
        self._expire(now)
        self._sent.append(now)
        if self._server_remaining is not None and self._server_remaining > 0:
            self._server_remaining -= 1

    def observe(self, rate_limit: RateLimit) -> None:
        """Adopts the server's rate-limit headers when it sent them."""
        if rate_limit.remaining is None:
            return
        self._server_remaining = max(0, rate_limit.remaining)
        self._server_reset_at = self._to_monotonic(rate_limit.reset_at)

    def block_until_reset(self, rate_limit: RateLimit, fallback_s: float) -> float:
        """After a 429: no request before the server's reset (or `fallback_s` from now).

        Returns the seconds blocked, for logs.
        """
        now = self._clock()
        until = self._to_monotonic(rate_limit.reset_at)
        if until is None or until <= now:
            until = now + fallback_s
        self._not_before = max(self._not_before, until)
        return until - now

    def delay(self, seconds: float) -> None:
        """No request during the next `seconds` (backoff after an error)."""
        self._not_before = max(self._not_before, self._clock() + seconds)

    def remaining(self) -> int:
        """Requests left in the current sliding hour (the server's count when stricter)."""
        self._expire(self._clock())
        left = self.requests_per_hour - len(self._sent)
        if self._server_remaining is not None:
            left = min(left, self._server_remaining)
        return max(0, left)

    def _spacing(self, now: float) -> float:
        # With server headers, spread what is left evenly until its reset, never faster than ours.
        if (
            self._server_remaining
            and self._server_reset_at is not None
            and self._server_reset_at > now
        ):
            return max(self.interval_s, (self._server_reset_at - now) / self._server_remaining)
        return self.interval_s

    def _expire(self, now: float) -> None:
        while self._sent and self._sent[0] + WINDOW_S <= now:
            self._sent.popleft()
        if self._server_reset_at is not None and now >= self._server_reset_at:
            # The server's window has rolled over: its count no longer applies.
            self._server_remaining = None
            self._server_reset_at = None

    def _to_monotonic(self, epoch: float | None) -> float | None:
        if epoch is None:
            return None
        return self._clock() + (epoch - self._wall_clock())
