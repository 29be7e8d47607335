"""The classifier loop: poll -> batch -> decode -> predict -> publish -> commit.

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
import time
from collections import Counter as Tally
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer, OffsetAndMetadata
from kafka import errors as kafka_errors
from kafka.coordinator.assignors.cooperative_sticky import CooperativeStickyAssignor

from common.kafka_settings import client_config, producer_config
from model.store import bullish_prior
from stream.batcher import Batcher
from stream.dead_letter import (
    MAX_DLQ_RECORD_BYTES,
    RefusedRecords,
    dead_letter,
    dlq_record_limit,
    is_permanent,
)
from stream.decode import ClassifiableMessage, DeadLetterReason, Rejection, decode
from stream.liveness import Liveness, broker_connected
from stream.metrics import ClassifierMetrics
from stream.offsets import first_offsets, next_offsets
from stream.predictor import SentimentPredictor, label_for
from stream.producer_errors import tolerate_refused_records
from stream.sentiment_record import sentiment_record, utc_now_iso
from stream.settings import ClassifierSettings
from stream.unreadable import UnreadableRecord, unreadable_record

log = logging.getLogger(__name__)

IDLE_POLL_MS = 250  # poll timeout while no batch is open: bounds the reaction to a stop
# poll timeout while a batch is scored: its scores are published (and a waiting batch that
# is not full is handed over) at most this long after they are ready, and the polls
# meanwhile fetch the next batch. Each poll costs Python work under the GIL that the
# inference thread needs too, so shorter polls cost CPU without lowering latency
# (bench/results/HISTORY.md).
SCORING_POLL_MS = 5
# batches handed to the inference threads and not yet published, beyond one per worker (being
# scored): one queued, so no worker waits for the loop; beyond that the loop waits
QUEUED_FOR_THE_MODEL = 1
LAG_REFRESH_S = 2.0  # how often lag of idle partitions is refreshed
RETRY_BACKOFF_S = 1.0  # pause before re-reading a batch whose publish or commit failed
# On the way out, each of the last commit, leaving the group and flushing the producer waits
# at most this long, so SIGTERM ends the process within seconds even when the broker is gone.
SHUTDOWN_STEP_TIMEOUT_MS = 5000


class FatalServiceError(RuntimeError):
    """The service cannot go on (fenced by another instance with its transactional.id)."""


class _ScoredBatch:
    """A taken batch: its records decoded, its texts handed to the inference thread."""

    __slots__ = (
        "batch",
        "failed",
        "gone",
        "messages",
        "probabilities",
        "rejected",
        "sources",
        "version",
    )

    def __init__(
        self,
        batch: dict[Any, list[Any]],
        messages: list[ClassifiableMessage],
        sources: list[Any],
        rejected: list[tuple[Any, Rejection]],
        failed: list[tuple[Any, Rejection]],
        probabilities: Future[list[float | None]],
        version: str,
    ) -> None:
        self.batch = batch
        self.messages = messages
        self.sources = sources
        self.rejected = rejected  # undecodable records
        self.failed = failed  # records the model failed on (filled by the inference thread)
        self.probabilities = probabilities
        self.version = version  # of the model that scores it, named in each output record
        self.gone: set[tuple[str, int]] = set()  # (topic, partition) revoked meanwhile

    def drop(self, partitions: Iterable[Any]) -> int:
        """Forgets the records of revoked partitions (they are re-read by their next owner);
        returns how many were dropped."""
        dropped = 0
        for tp in partitions:
            records = self.batch.pop(tp, None)
            if records:
                dropped += len(records)
                self.gone.add((tp.topic, tp.partition))
        return dropped

    def outcome(
        self,
    ) -> tuple[
        list[ClassifiableMessage], list[Any], list[float | None], list[tuple[Any, Rejection]]
    ]:
        """Waits for the scores: (messages, their records, P(bullish) or None, rejections),
        without the records of partitions revoked meanwhile."""
        probabilities = self.probabilities.result()
        rejected = self.rejected + self.failed
        if not self.gone:
            return self.messages, self.sources, probabilities, rejected
        gone = self.gone
        kept = [i for i, r in enumerate(self.sources) if (r.topic, r.partition) not in gone]
        return (
            [self.messages[i] for i in kept],
            [self.sources[i] for i in kept],
            [probabilities[i] for i in kept],
            [(r, why) for r, why in rejected if (r.topic, r.partition) not in gone],
        )


class ClassifierService:
    """Runs the loop until `stop()`; one instance per process."""

    def __init__(
        self,
        settings: ClassifierSettings,
        predictor: SentimentPredictor,
        metrics: ClassifierMetrics,
        consumer: Any,
        producer: Any,
        model_updates: Callable[[], SentimentPredictor | None] | None = None,
    ) -> None:
        self.settings = settings
        self.predictor = predictor
        # a newer model to serve from the next batch on, when there is one (hot reload)
        self._model_updates = model_updates
        self.metrics = metrics
        self.consumer = consumer
        self.producer = producer
        self.model_version = predictor.version
        self.batcher: Batcher[Any] = Batcher(settings.batch_size, settings.batch_wait_ms)
        # batches handed to the inference thread, oldest first: published in this order
        self._in_flight: deque[_ScoredBatch] = deque()
        # batches are scored by up to `inference_workers` calls at once while the loop
        # publishes; they are published in the order they were taken all the same
        self._max_in_flight = settings.inference_workers + QUEUED_FOR_THE_MODEL
        self._inference = ThreadPoolExecutor(
            max_workers=settings.inference_workers, thread_name_prefix="inference"
        )
        self.assigned: set[Any] = set()
        self.batches_processed = 0
        self._stop = threading.Event()
        self._last_lag_refresh = 0.0
        # latest offsets handed to commit_async, committed synchronously once more at close
        self._latest_offsets: dict[Any, Any] = {}
        self._commit_failed = False  # set by a failed commit_async; the next commit retries
        # when input and output have as many partitions, a record keeps its partition: the
        # same result as the key partitioner for keyed input, without hashing in Python
        self._keep_partition = False
        self._output_partitions = 0  # input partitions added later are partitioned by key
        # records whose output or DLQ copy the broker refused for good: sent smaller next time
        self._refused = RefusedRecords()
        self.dlq_max_bytes = MAX_DLQ_RECORD_BYTES  # make_service reads the topic's own limit
        self.liveness = Liveness(settings.stall_timeout_s)  # what /healthz and /readyz say
        self._input_waiting = False  # lag seen on an idle partition at the last refresh
        metrics.set_model(self.model_version, _bullish_prior(predictor))

    # ---- lifecycle -------------------------------------------------------------------

    def stop(self) -> None:
        """Asks the loop to finish its batch, commit and return (signal-handler safe)."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        """True once `stop()` was called."""
        return self._stop.is_set()

    def readiness(self) -> tuple[bool, str]:
        """For /readyz: ready when the model is loaded, partitions are assigned and it can
        consume (polls succeed, a broker is connected)."""
        if not self.assigned:
            return False, f"model {self.model_version} loaded; waiting for partitions"
        consuming, why = self.liveness.consuming()
        if not consuming:
            return False, why
        if broker_connected(self.consumer) is False:
            return False, "cannot consume: no broker connection"
        return True, f"ready: {len(self.assigned)} partition(s), model {self.model_version}"

    def health(self) -> tuple[bool, str]:
        """For /healthz: alive unless the loop made no progress on waiting input for
        `--stall-timeout-s` (see stream.liveness). A loop held up because no broker can be
        reached (e.g. waiting in a flush) is not stuck: a restart would not help."""
        alive, why = self.liveness.health()
        if not alive and broker_connected(self.consumer) is False:
            return True, f"waiting for a broker ({why})"
        return alive, why

    def run(self) -> None:
        """Polls and processes batches until stopped; then finishes the open batch and
        closes the clients."""
        settings = self.settings
        if settings.exactly_once:
            self.producer.init_transactions()
        self.consumer.subscribe([settings.input_topic], listener=_Listener(self))
        # After subscribe: this metadata fetch also gives the group coordinator its first
        # snapshot of the input topic, so the first assignment is made on it (kafka-python
        # otherwise assigns on an empty snapshot and rebalances again at once, with every
        # offset commit failing until that second rebalance ends).
        self._keep_partition = self._same_partition_counts()
        try:
            while not self._stop.is_set():
                self.step()
            while self._in_flight and self._finish_oldest():
                pass
            if len(self.batcher):
                self.process(self.batcher.take())
            self._final_commit()
        finally:
            self._close()

    def step(self) -> None:
        """Publishes every batch whose scores are in, oldest first; polls once; hands the
        batch being filled to the inference threads when it is full, or when its wait is over
        and no worker is busy (see the module docstring).
        The loop never waits for the model while it has Kafka work: with batches in flight
        it polls briefly and comes back, and only when every worker has a batch and one more
        is queued does it wait for the oldest (backpressure)."""
        in_flight = self._in_flight
        while in_flight and in_flight[0].probabilities.done():
            if not self._finish_oldest():
                return
        if self.batcher.room > 0:
            # while the model is busy the batch's wait does not matter (it cannot go yet)
            timeout = SCORING_POLL_MS if in_flight else self.batcher.wait_ms(IDLE_POLL_MS)
            polled = self._poll(timeout)
            if polled is None:
                return
            if polled:
                self.batcher.add(polled)
        else:
            polled = {}
        if self.batcher.is_full() or (self.batcher.is_ready() and self._model_is_free()):
            if len(in_flight) >= self._max_in_flight and not self._finish_oldest():
                return
            in_flight.append(self._start(self.batcher.take()))
        elif not in_flight and not polled:
            if self._commit_failed and not self.settings.exactly_once:
                self._recommit()
            self._refresh_idle_lag()
            # idle with nothing to read is progress; with input waiting it is a stall, unless
            # no broker can be reached (not ready then, and a restart would not help)
            if not self._input_waiting or broker_connected(self.consumer) is False:
                self.liveness.progressed()

    def _model_is_free(self) -> bool:
        """True when every batch handed to the model is scored (published or not): no
        worker is busy. Only full batches are scored side by side."""
        return all(scored.probabilities.done() for scored in self._in_flight)

    def _poll(self, timeout_ms: int) -> dict[Any, list[Any]] | None:
        """One consumer poll of at most the batch's room; None after a (logged) failure."""
        try:
            polled: dict[Any, list[Any]] = self.consumer.poll(
                timeout_ms=timeout_ms, max_records=self.batcher.room
            )
        except Exception as err:
            if isinstance(err, kafka_errors.CommitFailedError | kafka_errors.IllegalStateError):
                raise
            self.metrics.error("consume")
            self.liveness.poll_failed(err)
            found = unreadable_record(self.consumer, err)  # positioned after it already
            if found is not None:
                return {found[0]: [found[1]]}  # dead-lettered like any bad record
            if not isinstance(err, kafka_errors.KafkaError):
                raise
            log.warning("poll failed (%s); retrying", err)
            self._stop.wait(RETRY_BACKOFF_S / 4)  # a stop ends the wait
            return None
        self.liveness.polled()
        return polled

    def _finish_oldest(self) -> bool:
        """Publishes and commits the oldest batch in flight (waiting for its scores). When
        that fails it has been rewound; the batches taken after it (in flight, and the one
        being filled) are dropped and rewound too, so every record after the last commit is
        read again, in order."""
        scored = self._in_flight.popleft()
        if self._publish(scored):
            return True
        rewound = set(scored.batch)
        later = [b.batch for b in self._in_flight]
        self._in_flight.clear()  # their scores are dropped when they come
        later.append(self.batcher.take())
        assigned = self.consumer.assignment()
        for batch in later:  # oldest first: the first offset seen per partition is the one
            for tp, offset in first_offsets(batch).items():
                if tp not in rewound and tp in assigned:
                    self.consumer.seek(tp, offset)
                rewound.add(tp)
        return False

    def _same_partition_counts(self) -> bool:
        try:
            outputs = self.producer.partitions_for(self.settings.output_topic)
            inputs = self.consumer.partitions_for_topic(self.settings.input_topic)
        except kafka_errors.KafkaError as err:
            log.warning("topic metadata unavailable (%s); partitioning outputs by key", err)
            return False
        self._output_partitions = len(outputs or ())
        return bool(inputs) and bool(outputs) and len(inputs) == len(outputs)

    def _final_commit(self) -> None:
        """At-least-once commits asynchronously; on the way out, wait for the last one."""
        if self.settings.exactly_once or not self._latest_offsets:
            return
        assigned = self.consumer.assignment()
        offsets = {tp: om for tp, om in self._latest_offsets.items() if tp in assigned}
        if not offsets:
            return
        try:
            self.consumer.commit(offsets, timeout_ms=SHUTDOWN_STEP_TIMEOUT_MS)
        except kafka_errors.KafkaError as err:
            log.warning("final offset commit failed (%s); records may be re-read", err)
            self.metrics.error("commit")

    def _close(self) -> None:
        self._inference.shutdown(wait=True, cancel_futures=True)
        try:
            self.consumer.close(autocommit=False, timeout_ms=SHUTDOWN_STEP_TIMEOUT_MS)
        except Exception:  # closing must not hide why the loop ended
            log.exception("closing the consumer failed")
        try:
            self.producer.close(timeout=SHUTDOWN_STEP_TIMEOUT_MS / 1000)
        except Exception:
            log.exception("closing the producer failed")

    # ---- one batch ---------------------------------------------------------------------

    def process(self, batch: dict[Any, list[Any]]) -> bool:
        """Labels, publishes and commits one batch; True when committed. On a failed
        publish or commit the batch's partitions are rewound so its records are re-read."""
        if not batch:
            return True
        return self._publish(self._start(batch))

    def _serving(self) -> SentimentPredictor:
        """The model for the batch being taken: a newer one takes over here, at a batch
        boundary; batches taken before keep the one they were taken with."""
        if self._model_updates is not None:
            newer = self._model_updates()
            if newer is not None:
                log.info(
                    "model %s serves from this batch on (was %s)", newer.version, self.model_version
                )
                self.predictor, self.model_version = newer, newer.version
                self.metrics.set_model(newer.version, _bullish_prior(newer))
        return self.predictor

    def _start(self, batch: dict[Any, list[Any]]) -> _ScoredBatch:
        """Decodes a batch and hands its texts to the inference thread, with the model that
        serves now: it scores the whole batch and is named in each of its records."""
        predictor = self._serving()
        max_bytes = self.settings.max_message_bytes
        messages: list[ClassifiableMessage] = []
        sources: list[Any] = []
        rejected: list[tuple[Any, Rejection]] = []
        for records in batch.values():
            for record in records:
                result = decode(record.value, max_bytes)
                if type(result) is ClassifiableMessage:
                    messages.append(result)
                    sources.append(record)
                elif type(record) is UnreadableRecord:  # value None: the client could not read
                    rejected.append((record, record.rejection))
                else:
                    rejected.append((record, result))  # type: ignore[arg-type]
        failed: list[tuple[Any, Rejection]] = []  # appended to by the inference thread
        future = self._inference.submit(
            self._predict, predictor, messages, sources, failed, time.perf_counter()
        )
        return _ScoredBatch(batch, messages, sources, rejected, failed, future, predictor.version)

    def _publish(self, scored: _ScoredBatch) -> bool:
        """Waits for the batch's scores, then publishes and commits it; True when committed."""
        batch = scored.batch
        if not batch:  # every partition revoked while it was scored
            return True
        messages, sources, probabilities, rejected = scored.outcome()
        publish_started = time.perf_counter()
        settings = self.settings
        classified_at = utc_now_iso()
        send = self.producer.send
        output_topic, dlq_topic = settings.output_topic, settings.dlq_topic
        version = scored.version
        labels: Tally[str] = Tally()
        symbol_labels: Tally[tuple[str, str]] = Tally()
        agreement: Tally[str] = Tally()
        symbol_label = self.metrics.symbol_label
        keep_partition = self._keep_partition
        output_partitions = self._output_partitions
        futures: list[Any] = []
        owners: list[Any] = []  # the input record of each send, to trace a refusal to it
        skipped: list[Rejection] = []
        refused = self._refused
        if settings.exactly_once:
            self.producer.begin_transaction()
        try:
            for message, record, probability in zip(messages, sources, probabilities, strict=True):
                if probability is None:
                    continue  # dead-lettered by _predict
                if refused and refused.count(record):  # the output topic refused it for good
                    rejected.append((record, _output_refused(refused.last_error(record))))
                    continue
                label = label_for(probability)
                value = sentiment_record(
                    message,
                    label=label,
                    probability=probability,
                    model_version=version,
                    topic=record.topic,
                    partition=record.partition,
                    offset=record.offset,
                    classified_at=classified_at,
                )
                key = str(message.id).encode()  # whatever the input key was (or was not)
                try:
                    future = (
                        send(output_topic, value=value, key=key, partition=record.partition)
                        if keep_partition and record.partition < output_partitions
                        else send(output_topic, value=value, key=key)
                    )
                except (kafka_errors.KafkaError, ValueError, TypeError) as err:
                    if not is_permanent(err):
                        raise
                    refused.refused(record, err)
                    rejected.append((record, _output_refused(f"{type(err).__name__}: {err}")))
                    continue
                futures.append(future)
                owners.append(record)
                labels[label] += 1
                for symbol in {symbol_label(s) for s in message.symbols}:
                    symbol_labels[symbol, label] += 1
                if message.author_sentiment is not None:
                    agreement["agree" if message.author_sentiment == label else "disagree"] += 1
            for record, rejection in rejected:
                future = self._dead_letter(record, rejection, dlq_topic, classified_at)
                if future is None:
                    skipped.append(rejection)
                else:
                    futures.append(future)
                    owners.append(record)
            committed = self._commit(batch, futures)
        except kafka_errors.KafkaError as err:
            self._note_refusals(futures, owners)
            committed = self._recover(batch, "produce", err)
        if not committed:
            return False

        # Counted only once the batch is committed, so counters match what the topics hold.
        now = time.time()
        metrics = self.metrics
        metrics.publish_seconds.observe(time.perf_counter() - publish_started)
        metrics.consumed.inc(sum(len(r) for r in batch.values()))
        metrics.published.inc(sum(labels.values()))
        metrics.batch_size.observe(len(messages))
        for predicted, count in labels.items():
            metrics.predictions.labels(predicted).inc(count)
        for (symbol, predicted), count in symbol_labels.items():
            metrics.symbol_predictions.labels(symbol, predicted).inc(count)
        for verdict, count in agreement.items():
            metrics.author_tags.labels(verdict, version).inc(count)
        reasons = Tally(rejection.reason.value for _, rejection in rejected)
        reasons.subtract(rejection.reason.value for rejection in skipped)
        for reason, count in reasons.items():
            if count:
                metrics.dead_letters.labels(reason).inc(count)
        for reason, count in Tally(rejection.reason.value for rejection in skipped).items():
            metrics.skipped.labels(reason).inc(count)
        if refused:
            refused.settled(batch)
        metrics.observe_end_to_end(
            [
                max(0.0, now - record.timestamp / 1000.0)
                for record, probability in zip(sources, probabilities, strict=True)
                if probability is not None and record.timestamp > 0
            ]
        )
        self._update_lag(batch)
        self.batches_processed += 1
        self.liveness.progressed()
        return True

    def _dead_letter(
        self, record: Any, rejection: Rejection, dlq_topic: str, dead_lettered_at: str
    ) -> Any | None:
        """Sends the record's DLQ copy: whole (what Kafka cannot carry replaced or cut), or
        minimal once the broker refused the whole one for good. None when even the minimal
        copy was refused: the record is skipped, logged with its coordinates."""
        refusals = self._refused.count(record) if self._refused else 0
        if rejection.reason is DeadLetterReason.OUTPUT_REFUSED:
            refusals -= 1  # its first refusal was the labeled record's
        for minimal in (False, True)[max(0, refusals) :]:
            letter = dead_letter(
                key=record.key,
                value=record.value,
                original_headers=record.headers,
                reason=rejection.reason,
                detail=rejection.detail,
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                timestamp_ms=record.timestamp,
                dead_lettered_at=dead_lettered_at,
                max_bytes=self.dlq_max_bytes,
                minimal=minimal,
            )
            try:
                return self.producer.send(
                    dlq_topic, value=letter.value, key=letter.key, headers=letter.headers
                )
            except (kafka_errors.KafkaError, ValueError, TypeError) as err:
                if not is_permanent(err):
                    raise
                self._refused.refused(record, err)
        log.error(
            "%s[%d]@%d skipped: its DLQ copy was refused even minimal (%s; reason %s: %s)",
            record.topic,
            record.partition,
            record.offset,
            self._refused.last_error(record),
            rejection.reason.value,
            rejection.detail,
        )
        return None

    def _note_refusals(self, futures: Sequence[Any], owners: Sequence[Any]) -> None:
        """After a failed publish: the records whose send failed for good go one step down
        (see `RefusedRecords`) when the batch is read again."""
        for future, record in zip(futures, owners, strict=False):
            if future.failed() and is_permanent(future.exception):
                self._refused.refused(record, future.exception)

    def _predict(
        self,
        predictor: SentimentPredictor,
        messages: list[ClassifiableMessage],
        sources: list[Any],
        rejected: list[tuple[Any, Rejection]],
        taken_at: float,
    ) -> list[float | None]:
        """P(bullish) per message; None (and a DLQ entry) for a message the model fails on.
        `taken_at`: when the batch was handed over (perf_counter), for the scoring wait."""
        if not messages:
            return []
        started = time.perf_counter()
        self.metrics.scoring_wait_seconds.observe(started - taken_at)
        try:
            values = _checked(predictor.predict([m.text for m in messages]), len(messages))
            self.metrics.inference_seconds.observe(time.perf_counter() - started)
            return values  # type: ignore[return-value]
        except Exception:
            log.exception("batched prediction of %d messages failed; isolating", len(messages))
            self.metrics.error("predict")
        # One by one, so a single poison text costs itself only, not its batch.
        results: list[float | None] = []
        for message, record in zip(messages, sources, strict=True):
            try:
                results.append(_checked(predictor.predict([message.text]), 1)[0])
            except Exception as err:
                results.append(None)
                detail = f"model failed: {type(err).__name__}: {err}"
                rejected.append((record, Rejection(DeadLetterReason.PREDICTION_FAILED, detail)))
        return results

    def _commit(self, batch: Mapping[Any, list[Any]], futures: Sequence[Any]) -> bool:
        offsets = {
            tp: OffsetAndMetadata(offset, "", -1) for tp, offset in next_offsets(batch).items()
        }
        if self.settings.exactly_once:
            self.producer.send_offsets_to_transaction(offsets, self.consumer.group_metadata())
            self.producer.commit_transaction()
            return True
        self.producer.flush()
        for future in futures:
            if future.failed():
                raise future.exception
        # Every record of the batch is acknowledged: its offsets may be committed. Without
        # waiting for the reply (a round trip per batch): a failed commit only means a later
        # one covers these offsets, or the partition's next owner re-reads them (duplicates,
        # never loss). The last one is waited for at close.
        self._latest_offsets.update(offsets)
        if self._commit_failed:  # an earlier partition may have no later batch to cover it
            self._recommit()
        else:
            self.consumer.commit_async(offsets, callback=self._on_commit)
        return True

    def _on_commit(self, offsets: Any, response: Any) -> None:
        if isinstance(response, Exception):
            self._commit_failed = True
            log.warning("offset commit failed (%s); will commit again", response)
            self.metrics.error("commit")

    def _recommit(self) -> None:
        """After a failed asynchronous commit: commit the latest offsets of every assigned
        partition again (e.g. a rebalance was in progress), so a partition that stays idle
        does not keep an old committed offset until close."""
        self._commit_failed = False
        assigned = self.consumer.assignment()
        offsets = {tp: om for tp, om in self._latest_offsets.items() if tp in assigned}
        if offsets:
            self.consumer.commit_async(offsets, callback=self._on_commit)

    def _recover(self, batch: Mapping[Any, list[Any]], stage: str, err: Exception) -> bool:
        """After a failed publish or transaction: abort, rewind, and let the loop re-read."""
        if isinstance(
            err,
            kafka_errors.ProducerFencedError
            | kafka_errors.InvalidProducerEpochError
            | kafka_errors.TransactionalIdAuthorizationFailedError,
        ):
            raise FatalServiceError(
                f"transactional.id {self.settings.transactional_id!r} is used by another "
                f"instance ({err}); give each instance its own --instance-id"
            ) from err
        log.warning("batch not committed (%s: %s); rewinding to re-read it", stage, err)
        self.metrics.error("transaction" if self.settings.exactly_once else "produce")
        if self.settings.exactly_once:
            try:
                self.producer.abort_transaction()
            except kafka_errors.KafkaError:
                log.exception("aborting the transaction failed")
        assigned = self.consumer.assignment()
        for tp, offset in first_offsets(batch).items():
            if tp in assigned:
                self.consumer.seek(tp, offset)
        self._stop.wait(RETRY_BACKOFF_S)  # a stop ends the wait: the batch is re-read later
        return False

    # ---- lag -----------------------------------------------------------------------------

    def _update_lag(self, batch: Mapping[Any, list[Any]]) -> None:
        highwater = self.consumer.highwater
        lag = self.metrics.consumer_lag
        for tp, offset in next_offsets(batch).items():
            high = highwater(tp)
            if high is not None:
                lag.labels(tp.topic, str(tp.partition)).set(max(0, high - offset))

    def _refresh_idle_lag(self) -> None:
        now = time.monotonic()
        if now - self._last_lag_refresh < LAG_REFRESH_S:
            return
        self._last_lag_refresh = now
        lag = self.metrics.consumer_lag
        waiting = False
        for tp in list(self.assigned):
            try:
                high = self.consumer.highwater(tp)
                position = self.consumer.position(tp, timeout_ms=0)
            except Exception:  # unknown yet: try again on the next refresh
                continue
            if high is not None and position is not None:
                lag.labels(tp.topic, str(tp.partition)).set(max(0, high - position))
                waiting = waiting or high > position
        self._input_waiting = waiting

    # ---- rebalance -------------------------------------------------------------------------

    def on_revoked(self, partitions: set[Any]) -> None:
        """Called inside poll(): drop the records of revoked partitions from the batch being
        filled and the batches with the model; they are uncommitted and so will be re-read by
        their next owner."""
        dropped = self.batcher.drop(partitions)
        for scored in self._in_flight:
            dropped += scored.drop(partitions)
        self.assigned -= set(partitions)
        for tp in partitions:
            self._latest_offsets.pop(tp, None)
        self.metrics.forget_partitions((tp.topic, tp.partition) for tp in partitions)
        log.info(
            "partitions revoked: %s (dropped %d uncommitted records)", _names(partitions), dropped
        )

    def on_assigned(self, partitions: set[Any]) -> None:
        """Called inside poll(): the new partitions start at their committed offsets."""
        self.assigned |= set(partitions)
        log.info("partitions assigned: %s", _names(partitions))


class _Listener(ConsumerRebalanceListener):
    def __init__(self, service: ClassifierService) -> None:
        self.service = service

    def on_partitions_revoked(self, revoked: Any) -> None:
        self.service.on_revoked(set(revoked))

    def on_partitions_assigned(self, assigned: Any) -> None:
        self.service.on_assigned(set(assigned))


def _checked(probabilities: Any, expected: int) -> list[float]:
    """The model's output as Python floats, or ValueError when it is not `expected` finite
    probabilities (a NaN must not be published as a label)."""
    array = np.asarray(probabilities, dtype=np.float64).reshape(-1)
    if array.shape[0] != expected:
        raise ValueError(f"model returned {array.shape[0]} probabilities for {expected} texts")
    if not np.all(np.isfinite(array)) or array.min() < 0.0 or array.max() > 1.0:
        raise ValueError("model returned a probability outside [0, 1]")
    values: list[float] = array.tolist()
    return values


def _bullish_prior(predictor: SentimentPredictor) -> float | None:
    """The model's prior from its manifest, when it has one (stand-in models do not)."""
    manifest = getattr(predictor, "manifest", None)
    return bullish_prior(manifest) if isinstance(manifest, dict) else None


def _output_refused(error: str) -> Rejection:
    return Rejection(DeadLetterReason.OUTPUT_REFUSED, f"output topic refused it: {error}")


def _names(partitions: set[Any]) -> str:
    return ", ".join(f"{tp.topic}[{tp.partition}]" for tp in sorted(partitions)) or "none"


def make_clients(settings: ClassifierSettings) -> tuple[KafkaConsumer, KafkaProducer]:
    """The real Kafka consumer and producer for these settings."""
    client_id = f"stocksent-classifier-{settings.instance_id}"
    consumer = KafkaConsumer(
        **client_config(settings.kafka),
        client_id=client_id,
        group_id=settings.group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",  # a new group starts at the oldest record: none skipped
        isolation_level="read_committed",  # never classify an aborted upstream write
        max_poll_records=settings.batch_size,
        # Cooperative: a joining or leaving instance moves only the partitions that change
        # owner, so the others keep flowing during the rebalance.
        partition_assignment_strategy=(CooperativeStickyAssignor,),
        session_timeout_ms=10_000,  # a killed instance's partitions move within ~10 s
        heartbeat_interval_ms=2_000,
    )
    overrides: dict[str, Any] = {"client_id": client_id}
    if settings.exactly_once:
        overrides.update(
            transactional_id=settings.transactional_id,
            # bounds how long a crashed instance's open transaction blocks read_committed
            # readers when it does not come back under the same --instance-id
            transaction_timeout_ms=30_000,
        )
    producer = KafkaProducer(**producer_config(settings.kafka, **overrides))
    tolerate_refused_records(producer)  # a refused record must not break it for good
    return consumer, producer


def make_service(
    settings: ClassifierSettings,
    predictor: SentimentPredictor,
    metrics: ClassifierMetrics,
    clients: Callable[[ClassifierSettings], tuple[Any, Any]] = make_clients,
    model_updates: Callable[[], SentimentPredictor | None] | None = None,
) -> ClassifierService:
    """A service wired to real (or given) Kafka clients; `model_updates` (a follower's
    `take`) gives a newer model to serve from the next batch, or None."""
    consumer, producer = clients(settings)
    service = ClassifierService(settings, predictor, metrics, consumer, producer, model_updates)
    if clients is make_clients:  # a copy the DLQ topic refuses would cost a retry round
        service.dlq_max_bytes = dlq_record_limit(client_config(settings.kafka), settings.dlq_topic)
    return service
