"""Dead-letter records: the original bytes unchanged, plus headers saying why and where from.

Header names carry a `dlq_` prefix so they never collide with the producer's own headers
(`source`, `symbol`, `fetched_at`), which are kept as they were.

The DLQ write must never fail on any input, so what Kafka would refuse is replaced or cut,
and a header says so:
- a null key becomes an empty one (Kafka refuses a record with neither key nor value, and
  a compacted DLQ topic refuses a null key);
- a header with a null value (kafka-python refuses to send one) carries empty bytes;
- a header name that is not valid text is carried with its bad bytes escaped;
- a copy larger than the DLQ limit keeps the key (cut at 16 KiB), the original headers (up
  to 64 KiB, later ones left out) and as much of the value as fits. The limit is the DLQ
  topic's own `max.message.bytes` when the broker tells it (`dlq_record_limit`), and
  1,000,000 bytes at most (under the producer's `max.request.size`).
When the broker still refuses a copy for good, `RefusedRecords` makes the next attempt a minimal copy (the DLQ headers
only), and a record whose minimal copy is refused too is skipped: counted and logged with its
coordinates. Never retried forever.
"""

from __future__ import annotations

import enum
import logging
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from stream.kafka_port import InputRecord

log = logging.getLogger(__name__)

REASON = "dlq_reason"
DETAIL = "dlq_detail"
SOURCE_TOPIC = "dlq_source_topic"
SOURCE_PARTITION = "dlq_source_partition"
SOURCE_OFFSET = "dlq_source_offset"
SOURCE_TIMESTAMP_MS = "dlq_source_timestamp_ms"
DEAD_LETTERED_AT = "dlq_at"
# present only when the copy differs from the original record:
TRUNCATED_FROM = "dlq_truncated_from_bytes"  # the value was cut; its original length
KEY_TRUNCATED_FROM = "dlq_key_truncated_from_bytes"  # the key was cut; its original length
KEY_WAS_NULL = "dlq_key_was_null"  # "true": the original key was null; the copy's is b""
NULL_HEADER_VALUES = "dlq_null_header_values"  # positions (0-based, comma-separated)
HEADER_NAMES_ESCAPED = "dlq_header_names_escaped"  # positions of names not valid as text
HEADERS_DROPPED = "dlq_headers_dropped"  # how many original headers were left out (size)
MINIMAL = "dlq_minimal"  # "true": key, value and original headers left out (broker refused)

HEADER_NAMES = (
    REASON,
    DETAIL,
    SOURCE_TOPIC,
    SOURCE_PARTITION,
    SOURCE_OFFSET,
    SOURCE_TIMESTAMP_MS,
    DEAD_LETTERED_AT,
)

# The whole DLQ record (key, value, headers, record overhead) stays under this: below the
# producer's default max.request.size (1 MiB) and the broker's default max.message.bytes
# (1 MiB + 12), with room for the batch header.
MAX_DLQ_RECORD_BYTES = 1_000_000
MAX_DLQ_KEY_BYTES = 16 * 1024
MAX_DLQ_ORIGINAL_HEADER_BYTES = 64 * 1024
MAX_DETAIL_CHARS = 300
RECORD_OVERHEAD_BYTES = 128  # varints, attributes, batch header share: generous
# Refusals remembered at most (oldest forgotten first): each is one record in a failing batch.
MAX_REMEMBERED_REFUSALS = 10_000


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One record for the DLQ topic."""

    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]


def dead_letter(
    *,
    key: bytes | None,
    value: bytes | None,
    original_headers: Sequence[tuple[Any, Any]] | None,
    reason: enum.StrEnum,
    detail: str,
    topic: str,
    partition: int,
    offset: int,
    timestamp_ms: int,
    dead_lettered_at: str,
    max_bytes: int = MAX_DLQ_RECORD_BYTES,
    minimal: bool = False,
) -> DeadLetter:
    """Builds the DLQ record for an input record that could not be labeled: one that Kafka
    accepts whatever the input was (see the module docstring). `minimal`: only the DLQ
    headers, for a record whose full copy the broker refused."""
    headers: list[tuple[str, bytes]] = [
        (REASON, reason.value.encode()),
        (DETAIL, _text(detail[:MAX_DETAIL_CHARS])),
        (SOURCE_TOPIC, _text(topic)),
        (SOURCE_PARTITION, str(partition).encode()),
        (SOURCE_OFFSET, str(offset).encode()),
        (SOURCE_TIMESTAMP_MS, str(timestamp_ms).encode()),
        (DEAD_LETTERED_AT, _text(dead_lettered_at)),
    ]
    if minimal:
        headers.append((MINIMAL, b"true"))
        return DeadLetter(key=b"", value=None, headers=headers)
    budget = max_bytes - RECORD_OVERHEAD_BYTES - _headers_size(headers)

    if key is not None and len(key) > MAX_DLQ_KEY_BYTES:
        headers.append((KEY_TRUNCATED_FROM, str(len(key)).encode()))
        key = bytes(key[:MAX_DLQ_KEY_BYTES])
    if key is None:  # Kafka refuses neither key nor value; a compacted topic, a null key
        headers.append((KEY_WAS_NULL, b"true"))
        key = b""
    budget -= len(key)

    kept, null_values, escaped, dropped = _original_headers(
        original_headers or (), min(MAX_DLQ_ORIGINAL_HEADER_BYTES, max(0, budget))
    )
    if null_values:
        headers.append((NULL_HEADER_VALUES, ",".join(map(str, null_values)).encode()))
    if escaped:
        headers.append((HEADER_NAMES_ESCAPED, ",".join(map(str, escaped)).encode()))
    if dropped:
        headers.append((HEADERS_DROPPED, str(dropped).encode()))
    room = budget - _headers_size(kept) - 64  # 64: the truncation header, should it be needed
    if value is not None and len(value) > room:
        headers.append((TRUNCATED_FROM, str(len(value)).encode()))
        value = bytes(value[: max(0, room)])
    return DeadLetter(key=key, value=value, headers=kept + headers)


def dead_letter_of(
    record: InputRecord,
    reason: enum.StrEnum,
    detail: str,
    dead_lettered_at: str,
    max_bytes: int = MAX_DLQ_RECORD_BYTES,
    minimal: bool = False,
) -> DeadLetter:
    """`dead_letter` for a consumed record: its key, value, headers and coordinates."""
    return dead_letter(
        key=record.key,
        value=record.value,
        original_headers=record.headers,
        reason=reason,
        detail=detail,
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        timestamp_ms=record.timestamp,
        dead_lettered_at=dead_lettered_at,
        max_bytes=max_bytes,
        minimal=minimal,
    )


def dlq_record_limit(client_config: Mapping[str, Any], topic: str) -> int:
    """The size a DLQ copy must stay under: the topic's `max.message.bytes` (as the broker
    reports it, less room for the batch header) when it is smaller than
    MAX_DLQ_RECORD_BYTES; MAX_DLQ_RECORD_BYTES when it is larger or cannot be read."""
    try:
        from kafka import KafkaAdminClient
        from kafka.admin import ConfigResource, ConfigResourceType

        admin = KafkaAdminClient(**client_config)
        try:
            found = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
        finally:
            admin.close()
        value = found["topic"][topic]["max.message.bytes"]["value"]
        limit = int(value) - RECORD_OVERHEAD_BYTES
    except Exception as err:  # no rights to describe it, an older broker: the default
        log.info("max.message.bytes of %s unknown (%s); DLQ copies stay under %d bytes",
                 topic, err, MAX_DLQ_RECORD_BYTES)  # fmt: skip
        return MAX_DLQ_RECORD_BYTES
    return max(1024, min(MAX_DLQ_RECORD_BYTES, limit))


def _text(text: str) -> bytes:
    return text.encode("utf-8", "backslashreplace")


def _headers_size(headers: Iterable[tuple[str, bytes]]) -> int:
    return sum(len(name.encode("utf-8")) + len(value) + 4 for name, value in headers)


def _original_headers(
    original: Iterable[tuple[Any, Any]], budget: int
) -> tuple[list[tuple[str, bytes]], list[int], list[int], int]:
    """The producer's headers as Kafka accepts them back: (kept, positions of null values,
    positions of escaped names, how many left out for size). Our own `dlq_` headers of an
    earlier pass are dropped silently: they are written anew."""
    kept: list[tuple[str, bytes]] = []
    null_values: list[int] = []
    escaped: list[int] = []
    dropped = 0
    for position, (name, value) in enumerate(original):
        name, was_escaped = _header_name(name)
        if name.startswith("dlq_"):
            continue
        if value is None:
            value = b""
            null_values.append(position)
        elif not isinstance(value, bytes):
            value = bytes(value)
        size = len(name.encode("utf-8")) + len(value) + 4
        if size > budget:
            dropped += 1
            continue
        budget -= size
        if was_escaped:
            escaped.append(position)
        kept.append((name, value))
    return kept, null_values, escaped, dropped


def _header_name(name: Any) -> tuple[str, bool]:
    """A header name Kafka's producer can encode: (name, True when it had to be escaped)."""
    if isinstance(name, bytes | bytearray | memoryview):
        raw = bytes(name)
        try:
            return raw.decode("utf-8"), False
        except UnicodeDecodeError:
            return raw.decode("utf-8", "backslashreplace"), True
    if not isinstance(name, str):
        return str(name), True
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates
        return name.encode("utf-8", "backslashreplace").decode("utf-8"), True
    return name, False


def is_permanent(error: BaseException) -> bool:
    """True for a send error that retrying cannot change (too large, invalid record, a bad
    argument), False for one that may pass later (broker away, timeout, leader moving)."""
    if isinstance(error, ValueError | TypeError | UnicodeError):
        return True
    return not getattr(error, "retriable", False) and type(error).__name__ in _PERMANENT_NAMES


# kafka-python error class names whose cause is the record itself, not the broker's state.
_PERMANENT_NAMES = frozenset(
    {
        "MessageSizeTooLargeError",
        "RecordTooLargeError",
        "InvalidRecordError",
        "CorruptRecordError",
        "RecordListTooLargeError",
        "InvalidTimestampError",
        "UnsupportedForMessageFormatError",
        "UnsupportedCompressionTypeError",
    }
)


class RefusedRecords:
    """Input records whose output or DLQ copy the broker refused for good, by coordinates,
    with how often: each refusal sends the record one step further down
    output -> DLQ copy -> minimal DLQ copy -> skip. Forgotten once their batch commits."""

    def __init__(self, limit: int = MAX_REMEMBERED_REFUSALS) -> None:
        self._refusals: OrderedDict[tuple[str, int, int], tuple[int, str]] = OrderedDict()
        self._limit = limit

    def __bool__(self) -> bool:
        return bool(self._refusals)

    def count(self, record: Any) -> int:
        """How often the broker refused this record's output or DLQ copy."""
        found = self._refusals.get((record.topic, record.partition, record.offset))
        return found[0] if found else 0

    def last_error(self, record: Any) -> str:
        """The last refusal's error, for the DLQ detail."""
        found = self._refusals.get((record.topic, record.partition, record.offset))
        return found[1] if found else ""

    def refused(self, record: Any, error: BaseException) -> None:
        """Notes one more refusal of the record."""
        coordinates = (record.topic, record.partition, record.offset)
        count = self._refusals.pop(coordinates, (0, ""))[0] + 1
        self._refusals[coordinates] = (count, f"{type(error).__name__}: {error}")
        log.warning(
            "%s[%d]@%d refused by the broker for good (%s: %s); it goes one step down "
            "(output -> DLQ copy -> minimal DLQ copy -> skip)",
            *coordinates,
            type(error).__name__,
            error,
        )
        while len(self._refusals) > self._limit:
            self._refusals.popitem(last=False)

    def settled(self, batch: Mapping[Any, Sequence[Any]]) -> None:
        """Forgets the records of a committed batch."""
        for records in batch.values():
            for record in records:
                self._refusals.pop((record.topic, record.partition, record.offset), None)
