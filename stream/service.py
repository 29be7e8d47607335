"""The classifier loop: poll -> batch -> decode -> score -> publish and commit.

Each step has a module of its own, in the manner of getsentry/arroyo's processing steps:
stream/batcher.py (batch), stream/decoding.py (decode), stream/scoring.py and
stream/model_call.py (score), stream/publishing.py, stream/committing.py,
stream/publish_commit.py and stream/rewind.py (publish and commit), stream/rebalance.py and
stream/lag.py. This module composes them and runs the loop. Kafka is reached through the
typed boundary of stream/kafka_port.py: kafka-python's clients (stream/kafka_clients.py) or
the in-memory twin of the unit tests (stream/memory_kafka.py).

Inference runs on worker threads (TensorFlow releases the GIL), so while the model scores
batch N+1 the loop publishes and commits batch N and fetches the records of N+2. With
`--inference-workers` W, up to W full batches are scored at once, each by its own call.
Batches are still published and committed one at a time on the loop's thread, in the order
they were taken, whichever finishes scoring first; at most W + 1 are with the model (W
being scored, one queued) besides the one being filled. Batching is dynamic: a full batch
goes to the model at once (to a free worker, or queued behind those being scored, so a
drain keeps every worker busy), but a batch that is not full goes only when its wait is
over and no worker has anything left to score; until then it keeps filling. Under load
the batches thus grow to what arrives during one model call, which costs less CPU per
message than more, smaller calls side by side or queued behind each other (each call has a
fixed cost); idle, a batch still waits at most `batch_wait_ms`. So several workers score at
once only when batches fill: in a drain or a burst, where they add throughput.
When a rebalance revokes partitions, the records of those partitions in all of them are
dropped (never published, never committed), and the partition's new owner re-reads them
from the committed offset. Nothing is lost, and in exactly-once mode nothing is published
twice. A scored batch is published as soon as its scores are in (within `SCORING_POLL_MS`),
so overlapping never holds a batch back.

With a model store (`model_updates`, stream/model_follower.py), a newer model takes over when
a batch is taken: that batch and the later ones are scored by it and name it in each output
record's `model_version`; batches taken before keep the model they were taken with.

At-least-once: every output and DLQ record of the batch is acknowledged (`flush`) before
the offsets (last processed + 1) are committed. Exactly-once: the batch's records and its
offsets are one Kafka transaction (`send_offsets_to_transaction`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Executor

from kafka import errors as kafka_errors

from common.kafka_settings import client_config
from stream.batcher import Batcher
from stream.committing import (
    SHUTDOWN_STEP_TIMEOUT_MS,
    AtLeastOnceCommitter,
    Committer,
    ExactlyOnceCommitter,
)
from stream.dead_letter import MAX_DLQ_RECORD_BYTES, dlq_record_limit
from stream.decoding import decode_batch
from stream.kafka_clients import make_clients
from stream.kafka_port import Batch, ConsumerPort, InputRecord, Partition, ProducerPort
from stream.lag import Lag
from stream.liveness import Liveness
from stream.metrics import ClassifierMetrics
from stream.predictor import SentimentPredictor
from stream.publish_commit import FatalServiceError, PublishAndCommit
from stream.publishing import Publisher
from stream.rebalance import Rebalance
from stream.rewind import rewind
from stream.scoring import ModelUpdates, Scoring
from stream.settings import ClassifierSettings

__all__ = ["ClassifierService", "FatalServiceError", "make_clients", "make_service"]

log = logging.getLogger(__name__)

IDLE_POLL_MS = 250  # poll timeout while no batch is open: bounds the reaction to a stop
# poll timeout while a batch is scored: its scores are published (and a waiting batch that
# is not full is handed over) at most this long after they are ready, and the polls
# meanwhile fetch the next batch. Each poll costs Python work under the GIL that the
# inference thread needs too, so shorter polls cost CPU without lowering latency
# (bench/results/HISTORY.md).
SCORING_POLL_MS = 5
RETRY_BACKOFF_S = 1.0  # pause before re-reading a batch whose publish or commit failed
POLL_RETRY_SHARE = 0.25  # after a failed poll, this share of it


class ClassifierService:
    """Runs the loop until `stop()`; one instance per process. `executor` runs the model
    calls (a thread pool of `inference_workers` by default); `retry_backoff_s` is the pause
    before a batch that failed to publish or commit is read again (a quarter of it after a
    failed poll)."""

    def __init__(
        self,
        settings: ClassifierSettings,
        predictor: SentimentPredictor,
        metrics: ClassifierMetrics,
        consumer: ConsumerPort,
        producer: ProducerPort,
        model_updates: ModelUpdates | None = None,
        *,
        executor: Executor | None = None,
        retry_backoff_s: float = RETRY_BACKOFF_S,
        dlq_max_bytes: int = MAX_DLQ_RECORD_BYTES,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.consumer = consumer
        self.producer = producer
        self._stop = threading.Event()
        self._retry_backoff_s = retry_backoff_s
        self.liveness = Liveness(settings.stall_timeout_s)  # what /healthz and /readyz say
        self.batcher: Batcher[Partition] = Batcher(settings.batch_size, settings.batch_wait_ms)
        self.scoring = Scoring(
            predictor, metrics, settings.inference_workers, executor, model_updates
        )
        committer: Committer = (
            ExactlyOnceCommitter(consumer, producer)
            if settings.exactly_once
            else AtLeastOnceCommitter(consumer, producer, metrics)
        )
        self.rebalance = Rebalance(self.batcher, self.scoring, committer, metrics)
        self.lag = Lag(consumer, metrics)
        publisher = Publisher(
            producer, settings.output_topic, settings.dlq_topic, metrics.symbol_label,
            dlq_max_bytes,
        )  # fmt: skip
        self.publish_commit = PublishAndCommit(
            consumer, publisher, committer, metrics, self.lag, self.liveness,
            lambda: self._stop.wait(retry_backoff_s), settings.transactional_id,
        )  # fmt: skip

    # ---- lifecycle and probes -------------------------------------------------------------

    def stop(self) -> None:
        """Asks the loop to finish its batch, commit and return (signal-handler safe)."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        """True once `stop()` was called."""
        return self._stop.is_set()

    @property
    def model_version(self) -> str:
        """The version serving the next batch taken."""
        return self.scoring.model_version

    @property
    def batches_processed(self) -> int:
        """How many batches were published and committed."""
        return self.publish_commit.batches_processed

    def readiness(self) -> tuple[bool, str]:
        """For /readyz: ready when the model is loaded, partitions are assigned and it can
        consume (polls succeed, a broker is connected)."""
        assigned = self.rebalance.assigned
        if not assigned:
            return False, f"model {self.model_version} loaded; waiting for partitions"
        consuming, why = self.liveness.consuming()
        if not consuming:
            return False, why
        if self.consumer.broker_connected() is False:
            return False, "cannot consume: no broker connection"
        return True, f"ready: {len(assigned)} partition(s), model {self.model_version}"

    def health(self) -> tuple[bool, str]:
        """For /healthz: alive unless the loop made no progress on waiting input for
        `--stall-timeout-s` (see stream.liveness). A loop held up because no broker can be
        reached (e.g. waiting in a flush) is not stuck: a restart would not help."""
        alive, why = self.liveness.health()
        if not alive and self.consumer.broker_connected() is False:
            return True, f"waiting for a broker ({why})"
        return alive, why

    def start(self) -> None:
        """Before the first step: initialises the transactions (exactly-once) and joins the
        consumer group. `run()` calls it."""
        self.publish_commit.committer.start()
        self.consumer.subscribe(self.settings.input_topic, self.rebalance)
        # After subscribe: this metadata fetch also gives the group coordinator its first
        # snapshot of the input topic, so the first assignment is made on it (kafka-python
        # otherwise assigns on an empty snapshot and rebalances again at once, with every
        # offset commit failing until that second rebalance ends).
        self._route_by_partition()

    def run(self) -> None:
        """Polls and processes batches until stopped; then finishes the open batches and
        closes the clients."""
        self.start()
        try:
            while not self._stop.is_set():
                self.step()
            self.finish()
        finally:
            self.close()

    def finish(self) -> None:
        """Publishes and commits the batches with the model and the one being filled, and
        waits for the last commit."""
        while len(self.scoring) and self._finish_oldest():
            pass
        if len(self.batcher):
            self.scoring.start(decode_batch(self.batcher.take(), self._max_bytes))
            self.publish_commit.finish(self.scoring.take_oldest())
        self.publish_commit.committer.final()

    def close(self) -> None:
        """Ends the model workers and closes the clients (each bounded in time)."""
        self.scoring.shutdown()
        try:
            self.consumer.close(timeout_ms=SHUTDOWN_STEP_TIMEOUT_MS)
        except Exception:  # closing must not hide why the loop ended
            log.exception("closing the consumer failed")
        try:
            self.producer.close(timeout_s=SHUTDOWN_STEP_TIMEOUT_MS / 1000)
        except Exception:
            log.exception("closing the producer failed")

    # ---- the loop ---------------------------------------------------------------------------

    def step(self) -> None:
        """Publishes every batch whose scores are in, oldest first; polls once; hands the
        batch being filled to the model when it is full, or when its wait is over and no
        worker is busy (see the module docstring).
        The loop never waits for the model while it has Kafka work: with batches being
        scored it polls briefly and comes back, and only when every worker has a batch and
        one more is queued does it wait for the oldest (backpressure)."""
        scoring, batcher = self.scoring, self.batcher
        while scoring.oldest_is_scored():
            if not self._finish_oldest():
                return
        polled: Mapping[Partition, list[InputRecord]] = {}
        if batcher.room > 0:
            # while the model is busy the batch's wait does not matter (it cannot go yet)
            timeout = SCORING_POLL_MS if len(scoring) else batcher.wait_ms(IDLE_POLL_MS)
            found = self._poll(timeout)
            if found is None:
                return
            polled = found
            batcher.add(polled)
        if batcher.is_full() or (batcher.is_ready() and scoring.is_free()):
            if scoring.is_full() and not self._finish_oldest():
                return
            scoring.start(decode_batch(batcher.take(), self._max_bytes))
        elif not len(scoring) and not polled:
            self._idle()

    def _idle(self) -> None:
        """Nothing to read or score: retry a failed commit, refresh the lag; idle with
        nothing waiting is progress, with input waiting a stall, unless no broker can be
        reached (not ready then, and a restart would not help)."""
        self.publish_commit.committer.retry()
        self.lag.refresh_idle(self.rebalance.assigned)
        if not self.lag.input_waiting or self.consumer.broker_connected() is False:
            self.liveness.progressed()

    def _poll(self, timeout_ms: int) -> Mapping[Partition, list[InputRecord]] | None:
        """One consumer poll of at most the batch's room; None after a (logged) failure."""
        try:
            polled = self.consumer.poll(timeout_ms, self.batcher.room)
        except Exception as err:
            if isinstance(err, kafka_errors.CommitFailedError | kafka_errors.IllegalStateError):
                raise
            self.metrics.error("consume")
            self.liveness.poll_failed(err)
            found = self.consumer.unreadable(err)  # positioned after it already
            if found is not None:
                return {found[0]: [found[1]]}  # dead-lettered like any bad record
            if not isinstance(err, kafka_errors.KafkaError):
                raise
            log.warning("poll failed (%s); retrying", err)
            self._stop.wait(self._retry_backoff_s * POLL_RETRY_SHARE)  # a stop ends the wait
            return None
        self.liveness.polled()
        return polled

    def _finish_oldest(self) -> bool:
        """Publishes and commits the oldest batch with the model (waiting for its scores).
        When that fails it has been rewound; the batches taken after it (with the model, and
        the one being filled) are dropped and rewound too, so every record after the last
        commit is read again, in order."""
        failed = self.scoring.take_oldest()
        if self.publish_commit.finish(failed):
            return True
        later: list[Batch] = [*self.scoring.clear(), self.batcher.take()]
        rewind(self.consumer, later, rewound=set(failed.batch))
        return False

    @property
    def _max_bytes(self) -> int:
        return self.settings.max_message_bytes

    def _route_by_partition(self) -> None:
        """When input and output have as many partitions, a record keeps its partition."""
        publisher = self.publish_commit.publisher
        try:
            outputs = self.producer.partition_count(self.settings.output_topic)
            inputs = self.consumer.partition_count(self.settings.input_topic)
        except kafka_errors.KafkaError as err:
            log.warning("topic metadata unavailable (%s); partitioning outputs by key", err)
            return
        publisher.output_partitions = outputs
        publisher.keep_partition = inputs > 0 and inputs == outputs


def make_service(
    settings: ClassifierSettings,
    predictor: SentimentPredictor,
    metrics: ClassifierMetrics,
    clients: Callable[[ClassifierSettings], tuple[ConsumerPort, ProducerPort]] = make_clients,
    model_updates: ModelUpdates | None = None,
) -> ClassifierService:
    """A service wired to real (or given) Kafka clients; `model_updates` (a follower's
    `take`) gives a newer model to serve from the next batch, or None."""
    consumer, producer = clients(settings)
    dlq_max_bytes = MAX_DLQ_RECORD_BYTES
    if clients is make_clients:  # a copy the DLQ topic refuses would cost a retry round
        dlq_max_bytes = dlq_record_limit(client_config(settings.kafka), settings.dlq_topic)
    return ClassifierService(
        settings, predictor, metrics, consumer, producer, model_updates,
        dlq_max_bytes=dlq_max_bytes,
    )  # fmt: skip
