"""The publish step: a scored batch's labeled records to the output topic, the rest to the
dead-letter topic, with a step down for what the broker refuses for good.

Each refusal of a record (remembered in `RefusedRecords` until its batch commits) sends it one
step further down when the batch is read again: output -> whole DLQ copy -> minimal DLQ copy
-> skipped (counted and logged with its coordinates). Never retried forever. A send error
that may pass (broker away, timeout) is raised: the batch is rewound and read again.
"""

from __future__ import annotations

import logging
from collections import Counter as Tally
from collections.abc import Callable
from dataclasses import dataclass, field

from kafka import errors as kafka_errors

from stream.dead_letter import MAX_DLQ_RECORD_BYTES, RefusedRecords, dead_letter_of, is_permanent
from stream.decode import ClassifiableMessage, DeadLetterReason, Rejection
from stream.kafka_port import InputRecord, ProducerPort, SendFuture
from stream.predictor import label_for
from stream.scoring import Outcome
from stream.sentiment_record import sentiment_record

log = logging.getLogger(__name__)

# what a send raises for a record the client refuses outright
SEND_ERRORS = (kafka_errors.KafkaError, ValueError, TypeError)


@dataclass(slots=True)
class Published:
    """What one batch sent: the futures (and the input record of each, to trace a refusal
    to it), the label tallies, and the rejections whose every DLQ copy was refused."""

    futures: list[SendFuture] = field(default_factory=list)
    owners: list[InputRecord] = field(default_factory=list)
    labels: Tally[str] = field(default_factory=Tally)
    symbol_labels: Tally[tuple[str, str]] = field(default_factory=Tally)
    agreement: Tally[str] = field(default_factory=Tally)
    dead_lettered: Tally[str] = field(default_factory=Tally)  # by reason
    skipped: Tally[str] = field(default_factory=Tally)  # by reason

    def sent(self, future: SendFuture, owner: InputRecord) -> None:
        """Notes one send."""
        self.futures.append(future)
        self.owners.append(owner)


class Publisher:
    """Sends the records of scored batches; `keep_partition` and `output_partitions` are set
    once the topics' partition counts are known."""

    def __init__(
        self,
        producer: ProducerPort,
        output_topic: str,
        dlq_topic: str,
        symbol_label: Callable[[str], str],
        dlq_max_bytes: int = MAX_DLQ_RECORD_BYTES,
    ) -> None:
        self._producer = producer
        self._output_topic = output_topic
        self._dlq_topic = dlq_topic
        self._symbol_label = symbol_label
        self.dlq_max_bytes = dlq_max_bytes
        self.refused = RefusedRecords()
        # when input and output have as many partitions, a record keeps its partition: the
        # same result as the key partitioner for keyed input, without hashing in Python
        self.keep_partition = False
        self.output_partitions = 0  # input partitions added later are partitioned by key

    def publish(self, outcome: Outcome, classified_at: str, published: Published) -> None:
        """Sends the batch's outputs, then its DLQ copies, noting each in `published`;
        raises a send error that may pass."""
        rejected = list(outcome.rejected)
        for message, record, probability in zip(
            outcome.messages, outcome.sources, outcome.probabilities, strict=True
        ):
            if probability is None:
                continue  # dead-lettered: the model failed on it
            label = label_for(probability)
            sent = self._send_output(message, record, probability, label, outcome, classified_at)
            if isinstance(sent, Rejection):
                rejected.append((record, sent))
                continue
            published.sent(sent, record)
            self._tally(message, label, published)
        for record, rejection in rejected:
            future = self._dead_letter(record, rejection, classified_at)
            if future is None:
                published.skipped[rejection.reason.value] += 1
            else:
                published.sent(future, record)
                published.dead_lettered[rejection.reason.value] += 1

    def _send_output(
        self,
        message: ClassifiableMessage,
        record: InputRecord,
        probability: float,
        label: str,
        outcome: Outcome,
        classified_at: str,
    ) -> SendFuture | Rejection:
        """Sends the labeled record; the rejection instead when the broker refused it (now,
        or at an earlier reading of the batch)."""
        refused = self.refused
        if refused and refused.count(record):  # the output topic refused it for good
            return _output_refused(refused.last_error(record))
        value = sentiment_record(
            message,
            label=label,
            probability=probability,
            model_version=outcome.version,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            classified_at=classified_at,
        )
        key = str(message.id).encode()  # whatever the input key was (or was not)
        keep = self.keep_partition and record.partition < self.output_partitions
        try:
            future = self._producer.send(
                self._output_topic, value, key, partition=record.partition if keep else None
            )
        except SEND_ERRORS as err:
            if not is_permanent(err):
                raise
            refused.refused(record, err)
            return _output_refused(f"{type(err).__name__}: {err}")
        return future

    def _tally(self, message: ClassifiableMessage, label: str, published: Published) -> None:
        published.labels[label] += 1
        for symbol in {self._symbol_label(s) for s in message.symbols}:
            published.symbol_labels[symbol, label] += 1
        if message.author_sentiment is not None:
            verdict = "agree" if message.author_sentiment == label else "disagree"
            published.agreement[verdict] += 1

    def _dead_letter(
        self, record: InputRecord, rejection: Rejection, dead_lettered_at: str
    ) -> SendFuture | None:
        """Sends the record's DLQ copy: whole (what Kafka cannot carry replaced or cut), or
        minimal once the broker refused the whole one for good. None when even the minimal
        copy was refused: the record is skipped, logged with its coordinates."""
        refusals = self.refused.count(record) if self.refused else 0
        if rejection.reason is DeadLetterReason.OUTPUT_REFUSED:
            refusals -= 1  # its first refusal was the labeled record's
        for minimal in (False, True)[max(0, refusals) :]:
            letter = dead_letter_of(
                record,
                rejection.reason,
                rejection.detail,
                dead_lettered_at,
                self.dlq_max_bytes,
                minimal,
            )
            try:
                return self._producer.send(
                    self._dlq_topic, letter.value, letter.key, letter.headers
                )
            except SEND_ERRORS as err:
                if not is_permanent(err):
                    raise
                self.refused.refused(record, err)
        log.error(
            "%s[%d]@%d skipped: its DLQ copy was refused even minimal (%s; reason %s: %s)",
            record.topic,
            record.partition,
            record.offset,
            self.refused.last_error(record),
            rejection.reason.value,
            rejection.detail,
        )
        return None

    def note_refusals(self, published: Published) -> None:
        """After a failed publish: the records whose send failed for good go one step down
        when the batch is read again."""
        for future, record in zip(published.futures, published.owners, strict=False):
            error = future.exception
            if future.failed() and error is not None and is_permanent(error):
                self.refused.refused(record, error)


def _output_refused(error: str) -> Rejection:
    return Rejection(DeadLetterReason.OUTPUT_REFUSED, f"output topic refused it: {error}")
