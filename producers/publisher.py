"""Publishing message objects to the input topic, as docs/CONTRACTS.md specifies.

Key: the message id as ASCII digits (none when the object has no integer id: the
classifier dead-letters it, as it does a replay line that is not JSON). Value: the message object as received, serialised with
orjson (key order and unknown fields kept). Headers: `source`, `symbol` (live only),
`fetched_at` (ISO-8601 UTC). The Kafka producer is idempotent with `acks=all`
(`common.kafka_settings.producer_config`). `flush()` returns only when every record sent
so far is acknowledged, and raises if any failed, so callers advance their state after it.

`MessageSink` is the interface the sources use; `KafkaPublisher` is the real one and tests
may use an in-memory sink for logic that does not need a broker.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from typing import Any, Protocol

import orjson
from kafka import KafkaProducer

from common.kafka_settings import KafkaConnection, producer_config
from producers.messages import RawRecord, message_id
from producers.metrics import ProducerMetrics, Source

log = logging.getLogger(__name__)

WARN_WITHOUT_ID = 10
"""Records without an integer id are logged one by one up to this many, then only counted."""


class PublishError(RuntimeError):
    """Kafka did not acknowledge at least one record; the message says why."""


class MessageSink(Protocol):
    """Where sources put messages."""

    def send(
        self,
        message: dict[str, Any] | RawRecord,
        *,
        source: Source,
        symbol: str | None,
        fetched_at: str,
    ) -> None:
        """Queues one message for publishing."""

    def flush(self) -> int:
        """Waits until everything queued is acknowledged; returns how many were."""

    def close(self) -> None:
        """Flushes, then releases the connection."""


def record_key(message: dict[str, Any] | RawRecord) -> bytes | None:
    """The Kafka key: the message id as ASCII digits; None when there is no integer id (such
    a record is still published, and the classifier dead-letters it with the reason)."""
    if isinstance(message, RawRecord):
        return None
    ident = message_id(message)
    return None if ident is None else str(ident).encode("ascii")


def record_value(message: dict[str, Any] | RawRecord) -> bytes:
    """The Kafka value: the message object as JSON, or a replay line's bytes as they were."""
    return message.value if isinstance(message, RawRecord) else orjson.dumps(message)


def record_headers(source: Source, symbol: str | None, fetched_at: str) -> list[tuple[str, bytes]]:
    """The input record headers of docs/CONTRACTS.md."""
    headers = [("source", source.value.encode())]
    if symbol is not None:
        headers.append(("symbol", symbol.encode()))
    headers.append(("fetched_at", fetched_at.encode()))
    return headers


class KafkaPublisher:
    """A `MessageSink` backed by kafka-python's idempotent producer."""

    def __init__(
        self,
        connection: KafkaConnection,
        topic: str,
        metrics: ProducerMetrics,
        compression_type: str = "none",
        **overrides: Any,
    ) -> None:
        self.topic = topic
        self._metrics = metrics
        self._producer = KafkaProducer(**producer_config(connection, compression_type, **overrides))
        self._lock = threading.Lock()
        self._acked: Counter[Source] = Counter()
        self._failures: list[str] = []
        self._closed = False
        self._without_id = 0

    def send(
        self,
        message: dict[str, Any] | RawRecord,
        *,
        source: Source,
        symbol: str | None,
        fetched_at: str,
    ) -> None:
        """Queues one record; acknowledgements are counted as they arrive."""
        key = record_key(message)
        if key is None:
            self._without_id += 1
            if self._without_id <= WARN_WITHOUT_ID:
                log.warning(
                    "publishing a record without an integer id (the classifier will "
                    "dead-letter it): %.120s",
                    record_value(message),
                )
        future = self._producer.send(
            self.topic,
            key=key,
            value=record_value(message),
            headers=record_headers(source, symbol, fetched_at),
        )
        # Callbacks, not kept futures: memory stays bounded however long a replay runs.
        future.add_callback(self._on_ack, source)
        future.add_errback(self._on_error)

    def flush(self) -> int:
        """Blocks until every queued record is acknowledged; raises PublishError otherwise."""
        self._producer.flush()
        with self._lock:
            acked, self._acked = self._acked, Counter()
            failures, self._failures = self._failures, []
        if failures:
            raise PublishError(
                f"{len(failures)} record(s) not acknowledged by Kafka, first: {failures[0]}"
            )
        return sum(acked.values())

    def close(self) -> None:
        """Flushes, then closes the producer (idempotent)."""
        if self._closed:
            return
        self._closed = True
        try:
            self.flush()
        finally:
            self._producer.close()

    def _on_ack(self, source: Source, _metadata: Any) -> None:
        # counted as each ack arrives, so /metrics is live, not a step every flush
        self._metrics.messages_published.labels(source=source.value).inc()
        with self._lock:
            self._acked[source] += 1

    def _on_error(self, error: BaseException) -> None:
        with self._lock:
            self._failures.append(f"{type(error).__name__}: {error}")
