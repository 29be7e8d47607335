"""Where to read again after a batch could not be committed: every record after the last
commit is read again, in order, so nothing is skipped."""

from __future__ import annotations

from collections.abc import Iterable

from stream.kafka_port import Batch, ConsumerPort, Partition
from stream.offsets import first_offsets


def rewind(
    consumer: ConsumerPort, batches: Iterable[Batch], rewound: set[Partition] | None = None
) -> set[Partition]:
    """Seeks each partition the consumer still owns back to its first offset in the oldest
    of `batches` (oldest first) that holds it, skipping those `rewound` already; returns the
    partitions rewound so far."""
    rewound = set() if rewound is None else rewound
    assigned = consumer.assignment()
    for batch in batches:
        for tp, offset in first_offsets(batch).items():
            if tp not in rewound and tp in assigned:
                consumer.seek(tp, offset)
            rewound.add(tp)
    return rewound
