"""Rebalance handling: partitions this instance gains and loses, heard inside `poll()`.

When a rebalance revokes partitions, their records are dropped from the batch being filled
and from every batch with the model (never published, never committed), and the partition's
new owner re-reads them from the committed offset. Nothing is lost, and in exactly-once mode
nothing is published twice.
"""

from __future__ import annotations

import logging

from stream.batcher import Batcher
from stream.committing import Committer
from stream.kafka_port import Partition, partition_names
from stream.metrics import ClassifierMetrics
from stream.scoring import Scoring

log = logging.getLogger(__name__)


class Rebalance:
    """A `RebalanceListener` that keeps the assigned partitions and drops revoked records."""

    def __init__(
        self,
        batcher: Batcher[Partition],
        scoring: Scoring,
        committer: Committer,
        metrics: ClassifierMetrics,
    ) -> None:
        self.assigned: set[Partition] = set()
        self._batcher = batcher
        self._scoring = scoring
        self._committer = committer
        self._metrics = metrics

    def on_revoked(self, partitions: set[Partition]) -> None:
        """Drops the revoked partitions' uncommitted records: their next owner re-reads them."""
        dropped = self._batcher.drop(partitions) + self._scoring.drop(partitions)
        self.assigned -= partitions
        self._committer.forget(partitions)
        self._metrics.forget_partitions((tp.topic, tp.partition) for tp in partitions)
        log.info(
            "partitions revoked: %s (dropped %d uncommitted records)",
            partition_names(partitions),
            dropped,
        )

    def on_assigned(self, partitions: set[Partition]) -> None:
        """The new partitions start at their committed offsets."""
        self.assigned |= partitions
        log.info("partitions assigned: %s", partition_names(partitions))
