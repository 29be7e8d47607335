"""Records the Kafka client cannot parse: found, skipped past, and handed on to be dead-lettered.

kafka-python raises from `poll()` when it cannot parse a fetched record: `CorruptRecordError`
for a header name that is not valid UTF-8, a failed CRC or a malformed record, and
`UnsupportedCodecError` for a compression codec it has no library for. It does not say where,
does not move past the record, and the next `poll()` raises again (or, once the half-read
fetch is exhausted, loops inside the client without returning). Left alone, that partition is
stuck for good.

The client keeps the half-read fetch of the failing partition as its next in line: the offset
it fetched from and how far it got. `unreadable_record` reads those, checks them against the
consumer's position, seeks one past the record and returns a stand-in record
(no key, no value) carrying the error, which the loop dead-letters like any other bad record,
so the skip is committed only once its DLQ copy is acknowledged. If the client's internals
ever change, it finds nothing and the caller falls back to retrying (and `/healthz` reports
the stall).

A fetch from inside a record batch returns the whole batch, which the client parses from
its start: once one record of a batch cannot be parsed, neither can any later record of that
batch (the client fails on the first before it gets to them). Those are dead-lettered as
unreadable too, one by one, each detail naming the offset the client cannot get past.
"""

from __future__ import annotations

import logging
from typing import Any, NamedTuple

from kafka.errors import CorruptRecordError, KafkaError, UnsupportedCodecError

from stream.decode import DeadLetterReason, Rejection

log = logging.getLogger(__name__)

MAX_ERROR_CHARS = 250
# the client's errors that mean "this record cannot be parsed" (any error that is not the
# client's own, e.g. a ValueError from a decompressor, means the same)
UNREADABLE_ERRORS = (CorruptRecordError, UnsupportedCodecError)


class UnreadableRecord(NamedTuple):
    """Stands for an input record the client could not parse; the attributes of
    kafka-python's ConsumerRecord that the loop reads, and the error."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]
    timestamp: int
    error: str

    @property
    def rejection(self) -> Rejection:
        """Why it goes to the DLQ."""
        return Rejection(DeadLetterReason.UNREADABLE, self.error)


def unreadable_record(consumer: Any, error: BaseException) -> tuple[Any, UnreadableRecord] | None:
    """After `poll()` raised `error`: (partition, stand-in) for the record the client failed
    to parse, with the consumer already positioned after it; None when the failure is not
    a record the client failed to parse (the caller retries)."""
    if isinstance(error, KafkaError) and not isinstance(error, UNREADABLE_ERRORS):
        return None  # a broker or group error: nothing to skip
    fetcher = getattr(consumer, "_fetcher", None)
    half_read = getattr(fetcher, "_next_partition_records", None)
    tp = getattr(half_read, "topic_partition", None)
    fetched_from = getattr(half_read, "fetch_offset", None)
    failed_at = getattr(half_read, "next_fetch_offset", None)
    if tp is None or not isinstance(fetched_from, int) or not isinstance(failed_at, int):
        return None
    try:
        offset = consumer.position(tp, timeout_ms=0) if tp in consumer.assignment() else None
    except Exception:  # position unknown: nothing safe to skip
        offset = None
    # Either the record the consumer is at failed (whether the fetch began there or before
    # it), or a fetch that began there failed on an earlier record of the same batch.
    # Anything else is a stale fetch: skip nothing.
    if not isinstance(offset, int) or not (
        (failed_at == offset and fetched_from <= offset)
        or (failed_at < offset and fetched_from == offset)
    ):
        _release(half_read)
        return None
    consumer.seek(tp, offset + 1)  # the client drops the half-read fetch on the seek
    text = f"{type(error).__name__}: {error}"
    if failed_at < offset:
        # Fetching from inside a record batch re-reads it from its start: the client cannot
        # get past the record at `failed_at`, so the rest of its batch is unreadable too.
        text = f"in a record batch the client cannot read past offset {failed_at}: {text}"
    text = text[:MAX_ERROR_CHARS]
    log.error(
        "%s[%d]@%d cannot be read by the Kafka client (%s); skipped past, to the DLQ",
        tp.topic,
        tp.partition,
        offset,
        text,
    )
    return tp, UnreadableRecord(tp.topic, tp.partition, offset, None, None, [], -1, text)


def _release(half_read: Any) -> None:
    """Drops a half-read fetch that failed: kafka-python would otherwise take from its
    exhausted reader again and again inside the next poll, which never returns. Dropped, the
    records are fetched anew; if they fail again, the poll raises again and the loop retries
    (and can stop, and /healthz reports the stall)."""
    try:
        half_read.drain()
    except Exception:
        log.debug("could not drop the half-read fetch", exc_info=True)
