"""Feeds a stream of ready message objects (replay, synthetic) into the sink at a set rate."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from producers.messages import RawRecord, iso_utc_ms
from producers.metrics import Source
from producers.publisher import MessageSink

log = logging.getLogger(__name__)

FLUSH_EVERY = 1000
"""Flush (wait for acks) this often, so a failure surfaces early and memory stays bounded."""


class Pacer:
    """Spaces events at `rate` per second against a fixed schedule (no drift); 0 = no limit."""

    def __init__(
        self,
        rate: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Any] = time.sleep,
    ) -> None:
        self.rate = rate
        self._clock = clock
        self._sleep = sleep
        self._start: float | None = None
        self._count = 0

    def wait(self) -> None:
        """Returns when the next event is due."""
        if self.rate <= 0:
            return
        now = self._clock()
        if self._start is None:
            self._start = now
        due = self._start + self._count / self.rate
        self._count += 1
        if due > now:
            self._sleep(due - now)


def feed(
    messages: Iterable[dict[str, Any] | RawRecord],
    sink: MessageSink,
    source: Source,
    *,
    rate: float = 0.0,
    count: int | None = None,
    stop: threading.Event | None = None,
    wall_clock: Callable[[], float] = time.time,
    pacer: Pacer | None = None,
) -> int:
    """Sends up to `count` messages at `rate`/s, flushing as it goes; returns how many sent."""
    stop = stop or threading.Event()
    pacer = pacer or Pacer(rate, sleep=stop.wait)
    sent = 0
    for message in messages:
        if stop.is_set() or (count is not None and sent >= count):
            break
        pacer.wait()
        if stop.is_set():
            break
        sink.send(message, source=source, symbol=None, fetched_at=iso_utc_ms(wall_clock()))
        sent += 1
        if sent % FLUSH_EVERY == 0:
            sink.flush()
    sink.flush()
    log.info("%s: %d message(s) published", source.value, sent)
    return sent
