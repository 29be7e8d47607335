"""The commit step, in two variants: a published batch's offsets are committed only once its
records are safe.

At-least-once: every output and DLQ record of the batch is acknowledged (`flush`) before the
offsets (last processed + 1) are committed, asynchronously: a failed commit only means a
later one covers these offsets (retried when idle, `retry`), or the partition's next owner
re-reads them (duplicates, never loss). The last one is waited for at close (`final`).
Exactly-once: the batch's records and its offsets are one Kafka transaction
(`send_offsets_to_transaction`), aborted when anything of it fails.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Protocol

from kafka import errors as kafka_errors

from stream.kafka_port import Batch, ConsumerPort, Partition, ProducerPort, SendFuture
from stream.metrics import ClassifierMetrics, ErrorStage
from stream.offsets import next_offsets

log = logging.getLogger(__name__)

# On the way out, each of the last commit, leaving the group and flushing the producer waits
# at most this long, so SIGTERM ends the process within seconds even when the broker is gone.
SHUTDOWN_STEP_TIMEOUT_MS = 5000

# the producer was fenced by another instance with its transactional.id
FENCED_ERRORS = (
    kafka_errors.ProducerFencedError,
    kafka_errors.InvalidProducerEpochError,
    kafka_errors.TransactionalIdAuthorizationFailedError,
)


class Committer(Protocol):
    """One of the two variants."""

    error_stage: ErrorStage  # the errors_total stage of a batch that could not be committed

    def start(self) -> None:
        """Before the first batch."""

    def begin(self) -> None:
        """Before a batch's first send."""

    def commit(self, batch: Batch, futures: Sequence[SendFuture]) -> None:
        """Commits a published batch; raises a KafkaError when it cannot."""

    def abort(self) -> None:
        """After a failed publish or commit, before the batch is read again."""

    def retry(self) -> None:
        """When idle: commits again what a failed asynchronous commit left behind."""

    def forget(self, partitions: Iterable[Partition]) -> None:
        """The partitions were revoked: they are not ours to commit any more."""

    def final(self) -> None:
        """On the way out: waits for the last commit."""


class AtLeastOnceCommitter:
    """Flush, then commit the offsets asynchronously."""

    error_stage: ErrorStage = "produce"

    def __init__(
        self, consumer: ConsumerPort, producer: ProducerPort, metrics: ClassifierMetrics
    ) -> None:
        self._consumer = consumer
        self._producer = producer
        self._metrics = metrics
        # latest offsets handed to commit_async, committed synchronously once more at close
        self._latest: dict[Partition, int] = {}
        self._failed = False  # set by a failed commit_async; the next commit retries

    def start(self) -> None:
        """Nothing to set up."""

    def begin(self) -> None:
        """Nothing to begin."""

    def commit(self, batch: Batch, futures: Sequence[SendFuture]) -> None:
        """Waits for every send of the batch (raising the first failure), then commits."""
        self._producer.flush()
        for future in futures:
            if future.failed() and future.exception is not None:
                raise future.exception
        self._latest.update(next_offsets(batch))
        if self._failed:  # an earlier partition may have no later batch to cover it
            self.retry()
        else:
            self._consumer.commit_async(next_offsets(batch), self._answered)

    def abort(self) -> None:
        """Nothing to abort: what was sent stays (at least once)."""

    def retry(self) -> None:
        """After a failed asynchronous commit: commit the latest offsets of every assigned
        partition again (e.g. a rebalance was in progress), so a partition that stays idle
        does not keep an old committed offset until close."""
        if not self._failed:
            return
        self._failed = False
        offsets = self._assigned_latest()
        if offsets:
            self._consumer.commit_async(offsets, self._answered)

    def forget(self, partitions: Iterable[Partition]) -> None:
        """Drops the revoked partitions' offsets."""
        for tp in partitions:
            self._latest.pop(tp, None)

    def final(self) -> None:
        """Commits the latest offsets once more, waiting for the answer."""
        offsets = self._assigned_latest()
        if not offsets:
            return
        try:
            self._consumer.commit(offsets, timeout_ms=SHUTDOWN_STEP_TIMEOUT_MS)
        except kafka_errors.KafkaError as err:
            log.warning("final offset commit failed (%s); records may be re-read", err)
            self._metrics.error("commit")

    def _assigned_latest(self) -> dict[Partition, int]:
        if not self._latest:
            return {}
        assigned = self._consumer.assignment()
        return {tp: offset for tp, offset in self._latest.items() if tp in assigned}

    def _answered(self, error: Exception | None) -> None:
        if error is not None:
            self._failed = True
            log.warning("offset commit failed (%s); will commit again", error)
            self._metrics.error("commit")


class ExactlyOnceCommitter:
    """One transaction per batch: its records and its offsets."""

    error_stage: ErrorStage = "transaction"

    def __init__(self, consumer: ConsumerPort, producer: ProducerPort) -> None:
        self._consumer = consumer
        self._producer = producer

    def start(self) -> None:
        """Fences any earlier instance with this transactional.id."""
        self._producer.init_transactions()

    def begin(self) -> None:
        """Opens the batch's transaction."""
        self._producer.begin_transaction()

    def commit(self, batch: Batch, futures: Sequence[SendFuture]) -> None:
        """Adds the offsets to the transaction and commits it."""
        self._producer.send_offsets_to_transaction(
            next_offsets(batch), self._consumer.group_metadata()
        )
        self._producer.commit_transaction()

    def abort(self) -> None:
        """Aborts the open transaction: none of its records is ever read."""
        try:
            self._producer.abort_transaction()
        except kafka_errors.KafkaError:
            log.exception("aborting the transaction failed")

    def retry(self) -> None:
        """Nothing to retry: offsets commit with their transaction."""

    def forget(self, partitions: Iterable[Partition]) -> None:
        """Nothing kept per partition."""

    def final(self) -> None:
        """Nothing left: every batch committed in its transaction."""
