"""Keeps one refused record from breaking kafka-python's idempotent producer for good.

kafka-python 3.0 moves a non-transactional idempotent producer to a fatal state on any
non-retriable batch error, the record-level ones included (`MessageSizeTooLargeError`,
`RecordTooLargeError`, `InvalidRecordError`: a topic whose `max.message.bytes` is smaller, a
compacted topic given a null key). From then on every send fails with that error, whatever
the record: one bad DLQ copy would stop the classifier until a restart. Its own comment says
such a producer should "just fail the batch"; the Java client fails the batch and bumps the
producer epoch (KIP-360) so the sequence numbers of later batches stay valid.
`tolerate_refused_records` makes it do that for the record-level errors only; everything
else is classified as before. (A transactional producer aborts the transaction instead.)
"""

from __future__ import annotations

import logging
from typing import Any

from stream.dead_letter import is_permanent

log = logging.getLogger(__name__)


def tolerate_refused_records(producer: Any) -> bool:
    """Patches this producer's error classification (see the module docstring); True when
    it did (an idempotent, non-transactional kafka-python producer)."""
    manager = getattr(producer, "_transaction_manager", None)
    classify = getattr(manager, "classify_batch_error", None)
    if manager is None or classify is None or manager.is_transactional():
        return False
    fatal = manager.ERROR_CLASS_FATAL

    def classify_batch_error(error: Any, batch: Any, log_start_offset: int = -1) -> Any:
        outcome = classify(error, batch, log_start_offset=log_start_offset)
        try:
            instance = error if isinstance(error, BaseException) else error()
        except Exception:
            return outcome
        if outcome == fatal and is_permanent(instance):
            log.warning(
                "batch to %s refused (%s): failing it alone, bumping the producer epoch",
                getattr(batch, "topic_partition", "?"),
                type(instance).__name__,
            )
            if manager._supports_epoch_bump():
                return manager.ERROR_CLASS_NEEDS_EPOCH_BUMP
            return manager.ERROR_CLASS_NEEDS_PRODUCER_ID_RESET
        return outcome

    manager.classify_batch_error = classify_batch_error
    return True
