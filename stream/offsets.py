"""Which offsets a processed batch commits, and where to rewind when it cannot commit."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any, TypeVar

PartitionT = TypeVar("PartitionT", bound=Hashable)


def next_offsets(batch: Mapping[PartitionT, Sequence[Any]]) -> dict[PartitionT, int]:
    """Per partition, the offset to commit: the last processed record's offset + 1
    (Kafka's committed offset names the next record to read)."""
    return {partition: records[-1].offset + 1 for partition, records in batch.items() if records}


def first_offsets(batch: Mapping[PartitionT, Sequence[Any]]) -> dict[PartitionT, int]:
    """Per partition, the first offset of the batch: where to seek back to when the batch's
    transaction is aborted, so the records are read again rather than skipped."""
    return {partition: records[0].offset for partition, records in batch.items() if records}
