"""The consumer-lag gauges: per partition, how many records wait behind what was committed
(after each batch) or behind the position (refreshed while idle), and whether any input is
waiting at all (an idle loop with input waiting is stalled, see stream/liveness.py)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from stream.kafka_port import Batch, ConsumerPort, Partition
from stream.metrics import ClassifierMetrics
from stream.offsets import next_offsets

LAG_REFRESH_S = 2.0  # how often lag of idle partitions is refreshed


class Lag:
    """Sets `stocksent_classifier_consumer_lag`; `input_waiting` after each idle refresh."""

    def __init__(
        self,
        consumer: ConsumerPort,
        metrics: ClassifierMetrics,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._consumer = consumer
        self._gauge = metrics.consumer_lag
        self._clock = clock
        self._last_refresh = float("-inf")
        self.input_waiting = False  # lag seen on an idle partition at the last refresh

    def committed(self, batch: Batch) -> None:
        """After a batch's commit: the lag behind its last records."""
        highwater = self._consumer.highwater
        for tp, offset in next_offsets(batch).items():
            high = highwater(tp)
            if high is not None:
                self._gauge.labels(tp.topic, str(tp.partition)).set(max(0, high - offset))

    def refresh_idle(self, assigned: Iterable[Partition]) -> None:
        """While idle, at most every LAG_REFRESH_S: the lag behind each position."""
        now = self._clock()
        if now - self._last_refresh < LAG_REFRESH_S:
            return
        self._last_refresh = now
        waiting = False
        for tp in list(assigned):
            try:
                high = self._consumer.highwater(tp)
                position = self._consumer.position(tp)
            except Exception:  # unknown yet: try again on the next refresh
                continue
            if high is not None and position is not None:
                self._gauge.labels(tp.topic, str(tp.partition)).set(max(0, high - position))
                waiting = waiting or high > position
        self.input_waiting = waiting
