"""The re-key stage: labeled records in, partial aggregates keyed by symbol out, then a
watermark marker to every repartition partition (see stream/aggregate/rekey.py).

Each input partition's watermark is committed with its offset, as the offset's metadata,
in the same transaction as the partials and markers: a restart or the partition's next
owner reads it back with the offset (`committed(tp, metadata=True)`), so lateness is
decided the same way whoever reads the partition.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from kafka import OffsetAndMetadata
from kafka import errors as kafka_errors

from stream.aggregate import wire
from stream.aggregate.combiner import Partial
from stream.aggregate.labeled_input import Unusable
from stream.aggregate.metrics import AggregatorMetrics
from stream.aggregate.rekey import RekeyedBatch, rekey_batch
from stream.aggregate.stage import Stage
from stream.aggregate.windows import NO_WATERMARK, View
from stream.dead_letter import dead_letter_of
from stream.sentiment_record import utc_now_iso

log = logging.getLogger(__name__)


class RekeyStage(Stage):
    """Stage 1 of the aggregator."""

    name = "rekey"

    def __init__(
        self,
        consumer: Any,
        producer: Any,
        *,
        exactly_once: bool,
        metrics: AggregatorMetrics,
        stop: threading.Event,
        stall_timeout_s: float,
        views: Sequence[View],
        grace_ms: int,
        repartition_topic: str,
        repartition_partitions: int,
        dlq_topic: str,
        dlq_max_bytes: int,
    ) -> None:
        super().__init__(consumer, producer, exactly_once, metrics, stop, stall_timeout_s)
        self.views, self.grace_ms = tuple(views), grace_ms
        self.repartition_topic = repartition_topic
        self.repartition_partitions = repartition_partitions
        self.dlq_topic, self.dlq_max_bytes = dlq_topic, dlq_max_bytes
        self.watermarks: dict[int, int] = {}  # input partition -> ms, for assigned ones
        self._unloaded: set[Any] = set()  # assigned, watermark not read back yet

    def on_assigned(self, partitions: set[Any]) -> None:
        """Their watermarks are read back (with their offsets) before their first batch."""
        super().on_assigned(partitions)
        self._unloaded |= partitions

    def on_revoked(self, partitions: set[Any]) -> None:
        """Nothing of them is pending (see stream/aggregate/stage.py): forget their
        watermarks."""
        super().on_revoked(partitions)
        self._unloaded -= partitions
        for tp in partitions:  # the next owner reads it back with the committed offset
            self.watermarks.pop(tp.partition, None)

    def idle(self) -> None:
        """Keeps the watermark lag current while nothing arrives."""
        self._gauge_lag()  # grows while nothing arrives

    def process(self, batch: dict[Any, list[Any]]) -> bool:
        """Combines the batch; sends partials, markers and DLQ copies; commits the offsets
        with the watermarks. True when committed."""
        try:
            self._load_watermarks([tp for tp in batch if tp in self._unloaded])
        except kafka_errors.KafkaError as err:  # read again with the batch
            return self._recover(batch, err)
        before = dict(self.watermarks)
        rekeyed = rekey_batch(batch, self.watermarks, self.views, self.grace_ms)
        offsets = {
            tp: OffsetAndMetadata(records[-1].offset + 1, self._metadata(tp.partition), -1)
            for tp, records in batch.items()
        }
        if not self.commit(batch, lambda: self._send(rekeyed), offsets):
            self.watermarks = before
            return False
        self._count(rekeyed)
        return True

    def _metadata(self, partition: int) -> str:
        watermark = self.watermarks.get(partition, NO_WATERMARK)
        return "" if watermark == NO_WATERMARK else str(watermark)

    def _load_watermarks(self, partitions: list[Any]) -> None:
        """Reads back the watermark committed with each partition's offset."""
        for tp in partitions:
            committed = self.consumer.committed(tp, metadata=True)
            metadata = getattr(committed, "metadata", "") or ""
            if metadata.strip().lstrip("-").isdigit():
                self.watermarks[tp.partition] = int(metadata)
            self._unloaded.discard(tp)
            log.info("%s[%d]: watermark %s", tp.topic, tp.partition, metadata or "none yet")

    def _send(self, rekeyed: RekeyedBatch) -> list[Any]:
        send, topic = self.producer.send, self.repartition_topic
        by_symbol: dict[str, list[tuple[int, int, Partial]]] = defaultdict(list)
        for (symbol, size, start), partial in rekeyed.partials.items():
            by_symbol[symbol].append((size, start, partial))
        futures = [
            send(topic, key=symbol.encode(), value=wire.partials_value(items))
            for symbol, items in by_symbol.items()
        ]
        if rekeyed.advanced:  # after the partials: a marker follows what it covers
            marker = wire.marker_value(rekeyed.advanced)
            futures += [
                send(topic, value=marker, partition=k) for k in range(self.repartition_partitions)
            ]
        now = utc_now_iso()
        for record, unusable in rekeyed.unusable:
            futures.append(self._dead_letter(record, unusable, now))
        return futures

    def _dead_letter(self, record: Any, unusable: Unusable, now: str) -> Any:
        letter = dead_letter_of(record, unusable.reason, unusable.detail, now, self.dlq_max_bytes)
        return self.producer.send(
            self.dlq_topic, key=letter.key, value=letter.value, headers=letter.headers
        )

    def _count(self, rekeyed: RekeyedBatch) -> None:
        metrics = self.metrics
        metrics.consumed.inc(rekeyed.consumed)
        if rekeyed.without_symbols:
            metrics.without_symbols.inc(rekeyed.without_symbols)
        for view, late in rekeyed.late.items():
            if late:
                metrics.late.labels(view).inc(late)
        reasons: dict[str, int] = defaultdict(int)
        for _, unusable in rekeyed.unusable:
            reasons[unusable.reason.value] += 1
        for reason, count in reasons.items():
            metrics.dead_letters.labels(reason).inc(count)
        self._gauge_lag()

    def _gauge_lag(self) -> None:
        if self.watermarks:
            lowest = min(self.watermarks.values())
            self.metrics.watermark_lag.set(max(0.0, time.time() - lowest / 1000))
