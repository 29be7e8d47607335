"""Publish-and-commit: a scored batch is published (stream/publishing.py) and committed
(stream/committing.py), or, when either fails, rewound to be read again.

The metrics of a batch are counted only once it is committed, so the counters match what
the topics hold.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from kafka import errors as kafka_errors

from stream.committing import FENCED_ERRORS, Committer
from stream.kafka_port import Batch, ConsumerPort
from stream.lag import Lag
from stream.liveness import Liveness
from stream.metrics import ClassifierMetrics
from stream.publishing import Published, Publisher
from stream.rewind import rewind
from stream.scoring import Outcome, ScoredBatch
from stream.sentiment_record import utc_now_iso

log = logging.getLogger(__name__)


class FatalServiceError(RuntimeError):
    """The service cannot go on (fenced by another instance with its transactional.id)."""


class PublishAndCommit:
    """Publishes and commits scored batches, one at a time, in the order they were taken."""

    def __init__(
        self,
        consumer: ConsumerPort,
        publisher: Publisher,
        committer: Committer,
        metrics: ClassifierMetrics,
        lag: Lag,
        liveness: Liveness,
        pause: Callable[[], object],
        transactional_id: str,
    ) -> None:
        self._consumer = consumer
        self.publisher = publisher
        self.committer = committer
        self._metrics = metrics
        self._lag = lag
        self._liveness = liveness
        self._pause = pause  # before the rewound batch is read again (a stop ends it)
        self._transactional_id = transactional_id
        self.batches_processed = 0

    def finish(self, scored: ScoredBatch) -> bool:
        """Waits for the batch's scores, then publishes and commits it; True when committed,
        False when it was rewound instead."""
        if not scored.batch:  # every partition revoked while it was scored
            return True
        outcome = scored.outcome()
        started = time.perf_counter()
        published = Published()
        self.committer.begin()
        try:
            self.publisher.publish(outcome, utc_now_iso(), published)
            self.committer.commit(outcome.batch, published.futures)
        except kafka_errors.KafkaError as err:
            self.publisher.note_refusals(published)
            self._recover(outcome.batch, err)
            return False
        self._committed(outcome, published, started)
        return True

    def _recover(self, batch: Batch, err: kafka_errors.KafkaError) -> None:
        """After a failed publish or transaction: abort, rewind, and let the loop re-read."""
        if isinstance(err, FENCED_ERRORS):
            raise FatalServiceError(
                f"transactional.id {self._transactional_id!r} is used by another "
                f"instance ({err}); give each instance its own --instance-id"
            ) from err
        log.warning("batch not committed (produce: %s); rewinding to re-read it", err)
        self._metrics.error(self.committer.error_stage)
        self.committer.abort()
        rewind(self._consumer, [batch])
        self._pause()

    def _committed(self, outcome: Outcome, published: Published, started: float) -> None:
        """Counts a committed batch."""
        now = time.time()
        metrics = self._metrics
        batch = outcome.batch
        metrics.publish_seconds.observe(time.perf_counter() - started)
        metrics.consumed.inc(sum(len(r) for r in batch.values()))
        metrics.published.inc(sum(published.labels.values()))
        metrics.batch_size.observe(len(outcome.messages))
        for predicted, count in published.labels.items():
            metrics.predictions.labels(predicted).inc(count)
        for (symbol, predicted), count in published.symbol_labels.items():
            metrics.symbol_predictions.labels(symbol, predicted).inc(count)
        for verdict, count in published.agreement.items():
            metrics.author_tags.labels(verdict, outcome.version).inc(count)
        for reason, count in published.dead_lettered.items():
            metrics.dead_letters.labels(reason).inc(count)
        for reason, count in published.skipped.items():
            metrics.skipped.labels(reason).inc(count)
        if self.publisher.refused:
            self.publisher.refused.settled(batch)
        metrics.observe_end_to_end(
            [
                max(0.0, now - record.timestamp / 1000.0)
                for record, probability in zip(outcome.sources, outcome.probabilities, strict=True)
                if probability is not None and record.timestamp > 0
            ]
        )
        self._lag.committed(batch)
        self.batches_processed += 1
        self._liveness.progressed()
