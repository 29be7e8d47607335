"""The decode step: a taken batch's records -> the messages to score and the rejections.

Runs on the loop's thread when a batch is taken, before its texts go to the model. A record
the Kafka client could not parse (a stand-in from `ConsumerPort.unreadable`) is rejected as
unreadable; every other record is decoded by `stream.decode.decode`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from stream.decode import ClassifiableMessage, Rejection, decode
from stream.kafka_port import Batch, InputRecord
from stream.unreadable import UnreadableRecord


@dataclass(slots=True)
class DecodedBatch:
    """A taken batch, its records split into messages to score and rejected records."""

    batch: Batch
    messages: list[ClassifiableMessage] = field(default_factory=list)
    sources: list[InputRecord] = field(default_factory=list)  # the record of each message
    rejected: list[tuple[InputRecord, Rejection]] = field(default_factory=list)


def decode_batch(batch: Batch, max_bytes: int) -> DecodedBatch:
    """Decodes every record of the batch, in partition and offset order."""
    decoded = DecodedBatch(batch)
    messages, sources, rejected = decoded.messages, decoded.sources, decoded.rejected
    for records in batch.values():
        for record in records:
            if type(record) is UnreadableRecord:  # the client could not read it at all
                rejected.append((record, record.rejection))
                continue
            result = decode(record.value, max_bytes)
            if type(result) is ClassifiableMessage:
                messages.append(result)
                sources.append(record)
            else:
                rejected.append((record, result))  # type: ignore[arg-type]
    return decoded
