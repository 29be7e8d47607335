"""The window stage: partial aggregates and watermark markers in, final windows out.

Per repartition partition k it holds a `PartitionState`; every change is written to
changelog partition k in the same transaction as the outputs and the repartition offsets.
On assignment of k the state is restored from changelog k (read_committed, to its end)
before any record of k is applied; on revocation it is dropped (the changelog has it).
At-least-once: outputs are flushed before the changelog, the changelog before the offset
commit; the changelog's `o` record says which repartition offsets the state holds, so a
restart applies no repartition record twice. What can repeat there: a final window whose
output was written but whose changelog tombstone was not is emitted again, with the same
figures.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from kafka import OffsetAndMetadata, TopicPartition
from kafka import errors as kafka_errors

from stream.aggregate import window_record
from stream.aggregate.combiner import Partial, WindowKey
from stream.aggregate.metrics import AggregatorMetrics
from stream.aggregate.stage import Stage
from stream.aggregate.window_state import PartitionState
from stream.aggregate.windows import View

log = logging.getLogger(__name__)

Final = list[tuple[WindowKey, Partial]]


class WindowStage(Stage):
    """Stage 2 of the aggregator."""

    name = "window"

    def __init__(
        self,
        consumer: Any,
        producer: Any,
        *,
        exactly_once: bool,
        metrics: AggregatorMetrics,
        stop: threading.Event,
        stall_timeout_s: float,
        views: tuple[View, ...],
        grace_ms: int,
        input_partitions: int,
        emit_every_ms: int,
        output_topic: str,
        changelog_topic: str,
        restore: Callable[[list[TopicPartition]], dict[int, PartitionState]],
    ) -> None:
        super().__init__(consumer, producer, exactly_once, metrics, stop, stall_timeout_s)
        self.views, self.grace_ms = views, grace_ms
        self.view_names = {view.size_ms: view.name for view in views}
        self.input_partitions = input_partitions
        self.output_topic, self.changelog_topic = output_topic, changelog_topic
        self._restore = restore
        self.emit_every_s = emit_every_ms / 1000
        self._last_early = time.monotonic()
        self.states: dict[int, PartitionState] = {}
        self._unrestored: set[int] = set()

    @property
    def restoring(self) -> bool:
        """True while an assigned partition's state is not restored yet."""
        return bool(self._unrestored)

    def on_assigned(self, partitions: set[Any]) -> None:
        """Their state is restored from the changelog before their first record."""
        super().on_assigned(partitions)
        self._unrestored |= {tp.partition for tp in partitions}

    def on_revoked(self, partitions: set[Any]) -> None:
        """Drops their state: the changelog has it for their next owner."""
        super().on_revoked(partitions)
        for tp in partitions:
            self.states.pop(tp.partition, None)
            self._unrestored.discard(tp.partition)
        self._gauge_open_windows()

    def idle(self) -> None:
        """Restores newly assigned partitions even when no record came."""
        try:
            self._restore_pending()
        except kafka_errors.KafkaError as err:
            self.metrics.error("restore")
            log.warning("window: restoring state failed (%s); trying again", err)

    def process(self, batch: dict[Any, list[Any]]) -> bool:
        """Applies the batch, takes the final windows, sends them and the changelog
        changes, commits the offsets. True when committed."""
        try:
            self._restore_pending()
        except kafka_errors.KafkaError as err:  # read again with the batch, once restored
            self.metrics.error("restore")
            return self._recover(batch, err)
        finals: dict[int, Final] = {}
        grace, inputs = self.grace_ms, self.input_partitions
        for tp, records in batch.items():
            state = self.states[tp.partition]
            for record in records:
                if record.offset >= state.applied_offset:
                    state.apply(record.key, record.value, grace, inputs)
            finals[tp.partition] = state.take_final(grace, inputs)
        early = self._take_early()
        offsets = {
            tp: OffsetAndMetadata(records[-1].offset + 1, "", -1) for tp, records in batch.items()
        }
        if not self.commit(batch, lambda: self._send(finals, early, offsets), offsets):
            self._forget([tp.partition for tp in batch])  # restored again from the changelog
            return False
        self._count(finals, early)
        return True

    def _take_early(self) -> Final:
        """With --emit-every: the open windows updated since the last early update, once
        that long has passed (early updates ride with a batch: no batch, no change)."""
        if not self.emit_every_s or time.monotonic() - self._last_early < self.emit_every_s:
            return []
        self._last_early = time.monotonic()
        return [item for state in self.states.values() for item in state.take_updated()]

    def _send(
        self, finals: dict[int, Final], early: Final, offsets: dict[Any, OffsetAndMetadata]
    ) -> list[Any]:
        send = self.producer.send
        futures = []
        outputs = [(item, True) for windows in finals.values() for item in windows]
        for (window, partial), final in [*outputs, *((item, False) for item in early)]:
            key, value = window_record.encode(window_record.window_record(window, partial, final))
            futures.append(send(self.output_topic, key=key, value=value))
        if not self.exactly_once:  # outputs before the changelog: a crash repeats, never loses
            self.producer.flush()
        for tp, offset in offsets.items():
            state = self.states[tp.partition]
            for change, changed in state.changes(finals[tp.partition], offset.offset):
                futures.append(
                    send(self.changelog_topic, key=change, value=changed, partition=tp.partition)
                )
        return futures

    def _restore_pending(self) -> None:
        if not self._unrestored:
            return
        partitions = sorted(self._unrestored)
        restored = self._restore([TopicPartition(self.changelog_topic, k) for k in partitions])
        for k in partitions:
            self.states[k] = restored.get(k) or PartitionState()
            self._unrestored.discard(k)
        held = sum(len(self.states[k].windows) for k in partitions)
        log.info("window: restored partitions %s (%d open windows)", partitions, held)
        self._gauge_open_windows()

    def _forget(self, partitions: list[int]) -> None:
        for k in partitions:
            self.states.pop(k, None)
            self._unrestored.add(k)

    def _count(self, finals: dict[int, Final], early: Final) -> None:
        emitted: Counter[str] = Counter()
        gauges = self.metrics.symbols
        for (_, size, _), _ in early:
            self.metrics.emitted.labels(self._view(size), "false").inc()
        for windows in finals.values():
            for (symbol, size, start), partial in windows:
                view = self._view(size)
                emitted[view] += 1
                gauges.final(view, start, symbol, partial[0], partial[1] / partial[0])
        for view, count in emitted.items():
            self.metrics.emitted.labels(view, "true").inc(count)
        if emitted:
            gauges.publish()
        stale = sum(state.stale for state in self.states.values())
        if stale:
            self.metrics.stale.inc(stale)
            for state in self.states.values():
                state.stale = 0
        self._gauge_open_windows()

    def _view(self, size_ms: int) -> str:
        return self.view_names.get(size_ms, f"{size_ms // 1000}s")

    def _gauge_open_windows(self) -> None:
        by_size: Counter[int] = Counter()
        for state in list(self.states.values()):
            for _, size, _ in state.windows:
                by_size[size] += 1
        for view in self.views:
            self.metrics.open_windows.labels(view.name).set(by_size[view.size_ms])
