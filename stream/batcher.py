"""Collects polled records into one batch: up to `max_size` records or `max_wait_ms` after
the first record arrived, whichever comes first.

Records are kept per partition (in offset order), which makes the offsets to commit and the
records of a revoked partition one dictionary lookup each.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import Any, Generic, TypeVar

PartitionT = TypeVar("PartitionT", bound=Hashable)


class Batcher(Generic[PartitionT]):
    """A batch being filled; `take()` hands it over and starts a new one."""

    def __init__(
        self, max_size: int, max_wait_ms: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if max_size < 1:
            raise ValueError(f"max_size must be >= 1, got {max_size}")
        self.max_size = max_size
        self.max_wait_s = max_wait_ms / 1000.0
        self._clock = clock
        self._records: dict[PartitionT, list[Any]] = {}
        self._size = 0
        self._started_at = 0.0

    def __len__(self) -> int:
        return self._size

    @property
    def room(self) -> int:
        """How many more records fit."""
        return self.max_size - self._size

    def add(self, polled: Mapping[PartitionT, Sequence[Any]]) -> None:
        """Adds the records of one poll (partition -> records in offset order)."""
        for partition, records in polled.items():
            if not records:
                continue
            if self._size == 0:
                self._started_at = self._clock()
            existing = self._records.get(partition)
            if existing is None:
                self._records[partition] = list(records)
            else:
                existing.extend(records)
            self._size += len(records)

    def is_full(self) -> bool:
        """No room left."""
        return self._size >= self.max_size

    def is_ready(self) -> bool:
        """Full, or non-empty and the wait since its first record is over."""
        if self.is_full():
            return True
        return self._size > 0 and self._clock() - self._started_at >= self.max_wait_s

    def wait_ms(self, idle_ms: int) -> int:
        """How long the next poll may block: the rest of the wait, or `idle_ms` when empty."""
        if self._size == 0:
            return idle_ms
        left = self.max_wait_s - (self._clock() - self._started_at)
        return max(0, math.ceil(left * 1000))  # rounding up: never wake before the deadline

    def drop(self, partitions: Iterable[PartitionT]) -> int:
        """Forgets the records of these partitions (revoked: their new owner re-reads them
        from the last committed offset); returns how many were dropped."""
        dropped = 0
        for partition in partitions:
            records = self._records.pop(partition, None)
            if records:
                dropped += len(records)
        self._size -= dropped
        return dropped

    def take(self) -> dict[PartitionT, list[Any]]:
        """The batch so far (partition -> records), leaving this batcher empty."""
        batch, self._records, self._size = self._records, {}, 0
        return batch
