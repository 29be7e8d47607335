"""The score step: decoded batches go to worker threads, are scored side by side, and come
back in the order they were taken.

Each batch is scored by the model serving when it was taken, and names it in its records:
with `model_updates` (a model follower's `take`, stream/model_follower.py), a newer model
takes over at a batch boundary, and batches taken before keep theirs. Up to `workers`
batches are scored at once and one more may wait for a worker (`QUEUED_FOR_THE_MODEL`);
beyond that `is_full()` tells the loop to publish the oldest first (backpressure).
Records of revoked partitions are dropped from every batch with the model (`drop`).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass

from model.store import bullish_prior
from stream.decode import ClassifiableMessage, Rejection
from stream.decoding import DecodedBatch
from stream.kafka_port import Batch, InputRecord, Partition
from stream.metrics import ClassifierMetrics
from stream.model_call import Scores, score
from stream.predictor import SentimentPredictor

log = logging.getLogger(__name__)

# batches handed to the inference threads and not yet published, beyond one per worker (being
# scored): one queued, so no worker waits for the loop; beyond that the loop waits
QUEUED_FOR_THE_MODEL = 1

ModelUpdates = Callable[[], SentimentPredictor | None]


@dataclass(slots=True)
class Outcome:
    """A scored batch as it is published: its messages, their records, P(bullish) or None
    (dead-lettered), and the rejected records, without those of revoked partitions."""

    batch: Batch
    messages: list[ClassifiableMessage]
    sources: list[InputRecord]
    probabilities: list[float | None]
    rejected: list[tuple[InputRecord, Rejection]]
    version: str  # of the model that scored it


class ScoredBatch:
    """A taken batch with the model: decoded, its scores to come."""

    __slots__ = ("decoded", "gone", "scores", "version")

    def __init__(self, decoded: DecodedBatch, scores: Future[Scores], version: str) -> None:
        self.decoded = decoded
        self.scores = scores
        self.version = version
        self.gone: set[tuple[str, int]] = set()  # (topic, partition) revoked meanwhile

    @property
    def batch(self) -> Batch:
        """The records still to publish (revoked partitions removed)."""
        return self.decoded.batch

    def drop(self, partitions: Iterable[Partition]) -> int:
        """Forgets the records of revoked partitions (re-read by their next owner); returns
        how many were dropped."""
        dropped = 0
        for tp in partitions:
            records = self.decoded.batch.pop(tp, None)
            if records:
                dropped += len(records)
                self.gone.add((tp.topic, tp.partition))
        return dropped

    def outcome(self) -> Outcome:
        """Waits for the scores; the batch without the records of revoked partitions."""
        scores = self.scores.result()
        decoded, gone = self.decoded, self.gone
        rejected = decoded.rejected + scores.failed
        if not gone:
            return Outcome(
                decoded.batch, decoded.messages, decoded.sources, scores.probabilities,
                rejected, self.version,
            )  # fmt: skip
        kept = [i for i, r in enumerate(decoded.sources) if (r.topic, r.partition) not in gone]
        return Outcome(
            decoded.batch,
            [decoded.messages[i] for i in kept],
            [decoded.sources[i] for i in kept],
            [scores.probabilities[i] for i in kept],
            [(r, why) for r, why in rejected if (r.topic, r.partition) not in gone],
            self.version,
        )


class Scoring:
    """The batches with the model, oldest first, and the model that serves."""

    def __init__(
        self,
        predictor: SentimentPredictor,
        metrics: ClassifierMetrics,
        workers: int,
        executor: Executor | None = None,
        model_updates: ModelUpdates | None = None,
    ) -> None:
        self.predictor = predictor
        self._metrics = metrics
        self._model_updates = model_updates
        self._executor = executor or ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="inference"
        )
        self._limit = workers + QUEUED_FOR_THE_MODEL
        self._in_flight: deque[ScoredBatch] = deque()
        metrics.set_model(predictor.version, model_prior(predictor))

    @property
    def model_version(self) -> str:
        """The version that scores the next batch taken."""
        return self.predictor.version

    def __len__(self) -> int:
        return len(self._in_flight)

    def is_full(self) -> bool:
        """Every worker has a batch and one more waits: the oldest must be published first."""
        return len(self._in_flight) >= self._limit

    def is_free(self) -> bool:
        """Every batch handed over is scored (published or not): no worker is busy. Only
        full batches are scored side by side."""
        return all(scored.scores.done() for scored in self._in_flight)

    def oldest_is_scored(self) -> bool:
        """The oldest batch's scores are in."""
        return bool(self._in_flight) and self._in_flight[0].scores.done()

    def start(self, decoded: DecodedBatch) -> None:
        """Hands the batch to a worker with the model that serves now."""
        predictor = self._serving()
        future = self._executor.submit(
            score, predictor, decoded, self._metrics, time.perf_counter()
        )
        self._in_flight.append(ScoredBatch(decoded, future, predictor.version))

    def take_oldest(self) -> ScoredBatch:
        """The oldest batch (its scores may still be coming)."""
        return self._in_flight.popleft()

    def drop(self, partitions: set[Partition]) -> int:
        """Drops the revoked partitions' records from every batch with the model."""
        return sum(scored.drop(partitions) for scored in self._in_flight)

    def clear(self) -> list[Batch]:
        """Forgets every batch with the model (their scores are dropped when they come);
        their records, oldest batch first, to re-read."""
        batches = [scored.batch for scored in self._in_flight]
        self._in_flight.clear()
        return batches

    def shutdown(self) -> None:
        """Waits for the calls in progress and ends the workers."""
        self._executor.shutdown(wait=True, cancel_futures=True)

    def _serving(self) -> SentimentPredictor:
        """A newer model takes over here, at a batch boundary."""
        newer = self._model_updates() if self._model_updates is not None else None
        if newer is not None:
            log.info(
                "model %s serves from this batch on (was %s)", newer.version, self.model_version
            )
            self.predictor = newer
            self._metrics.set_model(newer.version, model_prior(newer))
        return self.predictor


def model_prior(predictor: SentimentPredictor) -> float | None:
    """The model's prior from its manifest, when it has one (stand-in models do not)."""
    manifest = getattr(predictor, "manifest", None)
    return bullish_prior(manifest) if isinstance(manifest, dict) else None
