"""Dead-letter records: the original bytes unchanged, plus headers saying why and where from.

Header names carry a `dlq_` prefix so they never collide with the producer's own headers
(`source`, `symbol`, `fetched_at`), which are kept as they were.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from stream.decode import DeadLetterReason

REASON = "dlq_reason"
DETAIL = "dlq_detail"
SOURCE_TOPIC = "dlq_source_topic"
SOURCE_PARTITION = "dlq_source_partition"
SOURCE_OFFSET = "dlq_source_offset"
SOURCE_TIMESTAMP_MS = "dlq_source_timestamp_ms"
DEAD_LETTERED_AT = "dlq_at"
TRUNCATED_FROM = "dlq_truncated_from_bytes"

HEADER_NAMES = (
    REASON,
    DETAIL,
    SOURCE_TOPIC,
    SOURCE_PARTITION,
    SOURCE_OFFSET,
    SOURCE_TIMESTAMP_MS,
    DEAD_LETTERED_AT,
)

# Kafka's default max.message.bytes is ~1 MiB; a value above this cannot be republished
# whole, so it is cut and the header says so (it stays in the input topic, whole).
MAX_DLQ_VALUE_BYTES = 900_000
MAX_DETAIL_CHARS = 300


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
    original_headers: Sequence[tuple[str, bytes]],
    reason: DeadLetterReason,
    detail: str,
    topic: str,
    partition: int,
    offset: int,
    timestamp_ms: int,
    dead_lettered_at: str,
) -> DeadLetter:
    """Builds the DLQ record for an input record that could not be labeled."""
    headers = [h for h in original_headers if not h[0].startswith("dlq_")]
    headers += [
        (REASON, reason.value.encode()),
        (DETAIL, detail[:MAX_DETAIL_CHARS].encode("utf-8", "replace")),
        (SOURCE_TOPIC, topic.encode()),
        (SOURCE_PARTITION, str(partition).encode()),
        (SOURCE_OFFSET, str(offset).encode()),
        (SOURCE_TIMESTAMP_MS, str(timestamp_ms).encode()),
        (DEAD_LETTERED_AT, dead_lettered_at.encode()),
    ]
    if value is not None and len(value) > MAX_DLQ_VALUE_BYTES:
        headers.append((TRUNCATED_FROM, str(len(value)).encode()))
        value = value[:MAX_DLQ_VALUE_BYTES]
    return DeadLetter(key=key, value=value, headers=headers)
