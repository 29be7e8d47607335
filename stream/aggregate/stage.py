"""What both stages of the aggregator share: a consumer loop that processes each poll
batch as one unit (one Kafka transaction in exactly-once mode; flush, then commit in
at-least-once mode), rewinds a batch that failed, and stops on fencing.

A batch is processed and committed before the next poll, and rebalances happen only inside
a poll, so a revoked partition never has records half processed: nothing of it is pending
when the listener runs (the classifier, which overlaps batches, has to drop them instead).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from kafka import ConsumerRebalanceListener, OffsetAndMetadata
from kafka import errors as kafka_errors

from stream.aggregate.metrics import AggregatorMetrics, ErrorStage
from stream.committing import FENCED_ERRORS, SHUTDOWN_STEP_TIMEOUT_MS
from stream.liveness import Liveness
from stream.offsets import first_offsets
from stream.publish_commit import FatalServiceError

log = logging.getLogger(__name__)

IDLE_POLL_MS = 200
RETRY_BACKOFF_S = 1.0


class Stage:
    """One consumer, one producer, one batch at a time; subclasses say what a batch is."""

    name: ErrorStage = "rekey"

    def __init__(
        self,
        consumer: Any,
        producer: Any,
        exactly_once: bool,
        metrics: AggregatorMetrics,
        stop: threading.Event,
        stall_timeout_s: float,
    ) -> None:
        self.consumer, self.producer = consumer, producer
        self.exactly_once = exactly_once
        self.metrics = metrics
        self._stop = stop
        self.liveness = Liveness(stall_timeout_s)
        self.assigned: set[Any] = set()
        self.batches = 0

    def run(self, topic: str) -> None:
        """Polls and processes until stopped; then closes the clients."""
        try:
            if self.exactly_once:
                self.producer.init_transactions()
            self.consumer.subscribe([topic], listener=_Listener(self))
            while not self._stop.is_set():
                batch = self._poll()
                if batch:
                    if self.process(batch):
                        self.batches += 1
                        self.liveness.progressed()
                elif batch is not None:
                    self.idle()
                    self.liveness.progressed()
        finally:
            self._close()

    def process(self, batch: dict[Any, list[Any]]) -> bool:
        """Processes and commits one batch; True when committed."""
        raise NotImplementedError

    def idle(self) -> None:
        """Called after a poll that returned nothing."""

    def on_assigned(self, partitions: set[Any]) -> None:
        """Called inside poll() with the partitions this stage gained."""
        self.assigned |= partitions
        log.info("%s: partitions assigned: %s", self.name, _names(partitions))

    def on_revoked(self, partitions: set[Any]) -> None:
        """Called inside poll() with the partitions this stage lost."""
        self.assigned -= partitions
        log.info("%s: partitions revoked: %s", self.name, _names(partitions))

    def _poll(self) -> dict[Any, list[Any]] | None:
        try:
            polled: dict[Any, list[Any]] = self.consumer.poll(timeout_ms=IDLE_POLL_MS)
        except (kafka_errors.CommitFailedError, kafka_errors.IllegalStateError):
            raise
        except kafka_errors.KafkaError as err:
            self.metrics.error(self.name)
            self.liveness.poll_failed(err)
            log.warning("%s: poll failed (%s); retrying", self.name, err)
            self._stop.wait(RETRY_BACKOFF_S / 4)
            return None
        self.liveness.polled()
        return polled

    def commit(
        self,
        batch: Mapping[Any, Sequence[Any]],
        send: Callable[[], list[Any]],
        offsets: dict[Any, OffsetAndMetadata],
    ) -> bool:
        """Runs `send` (which sends the batch's records, returning their futures) and commits
        `offsets`: one transaction, or flush then commit. False after a failure: aborted and
        rewound to the batch's first offsets (the caller undoes its in-memory changes)."""
        try:
            if self.exactly_once:
                self.producer.begin_transaction()
                send()
                self.producer.send_offsets_to_transaction(offsets, self.consumer.group_metadata())
                self.producer.commit_transaction()
                return True
            futures = send()
            self.producer.flush()
            for future in futures:
                if future.failed():
                    raise future.exception
            self.consumer.commit(offsets)
            return True
        except Exception as err:
            return self._recover(batch, err)

    def _recover(self, batch: Mapping[Any, Sequence[Any]], err: Exception) -> bool:
        if isinstance(err, FENCED_ERRORS):
            raise FatalServiceError(
                f"{self.name}: transactional.id used by another instance ({err}); give each "
                "instance its own --instance-id"
            ) from err
        if not isinstance(err, kafka_errors.KafkaError):
            raise err
        log.warning("%s: batch not committed (%s); rewinding to re-read it", self.name, err)
        self.metrics.error(self.name)
        if self.exactly_once:
            try:
                self.producer.abort_transaction()
            except kafka_errors.KafkaError:
                log.exception("aborting the transaction failed")
        assigned = self.consumer.assignment()
        for tp, offset in first_offsets(batch).items():
            if tp in assigned:
                self.consumer.seek(tp, offset)
        self._stop.wait(RETRY_BACKOFF_S)
        return False

    def _close(self) -> None:
        try:
            self.consumer.close(autocommit=False, timeout_ms=SHUTDOWN_STEP_TIMEOUT_MS)
        except Exception:
            log.exception("%s: closing the consumer failed", self.name)
        try:
            self.producer.close(timeout=SHUTDOWN_STEP_TIMEOUT_MS / 1000)
        except Exception:
            log.exception("%s: closing the producer failed", self.name)


class _Listener(ConsumerRebalanceListener):
    def __init__(self, stage: Stage) -> None:
        self.stage = stage

    def on_partitions_revoked(self, revoked: Any) -> None:
        self.stage.on_revoked(set(revoked))

    def on_partitions_assigned(self, assigned: Any) -> None:
        self.stage.on_assigned(set(assigned))


def _names(partitions: set[Any]) -> str:
    return ", ".join(f"{tp.topic}[{tp.partition}]" for tp in sorted(partitions)) or "none"
