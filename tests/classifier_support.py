"""Helpers for the classifier tests: a stand-in model, in-memory Kafka fakes, StockTwits
message objects built from the canonical CSV, and running `stocksent classify`."""

from __future__ import annotations

import csv
import gzip
import html
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import orjson

from stocksent.service_process import ServiceProcess

# ---- models --------------------------------------------------------------------------------

BULLISH_WORDS = frozenset(
    [
        "buy",
        "long",
        "calls",
        "call",
        "bull",
        "bullish",
        "up",
        "moon",
        "rip",
        "green",
        "higher",
        "breakout",
    ]
)
BEARISH_WORDS = frozenset(
    [
        "sell",
        "short",
        "puts",
        "put",
        "bear",
        "bearish",
        "down",
        "dump",
        "red",
        "lower",
        "crash",
        "drop",
    ]
)


class KeywordPredictor:
    """A deterministic stand-in for the LSTM: word counts through a logistic. Only for tests
    that must run before (or without) the exported model."""

    version = "stand-in-keywords-1"

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        """P(bullish) per text."""
        scores = []
        for text in texts:
            words = text.lower().split()
            bull = sum(w.strip("!?.,$") in BULLISH_WORDS for w in words)
            bear = sum(w.strip("!?.,$") in BEARISH_WORDS for w in words)
            scores.append(0.3 + bull - bear + (len(words) % 7) / 10.0)
        return (1.0 / (1.0 + np.exp(-np.asarray(scores, dtype=np.float64)))).astype(np.float32)


def keyword_predictor() -> KeywordPredictor:
    """Factory for `--model py:tests.classifier_support:keyword_predictor`."""
    return KeywordPredictor()


STAND_IN_MODEL_SPEC = "py:tests.classifier_support:keyword_predictor"

HANG_TEXT = "__hang_the_model__"


class HangingPredictor(KeywordPredictor):
    """The stand-in, except that a batch holding HANG_TEXT never returns: a model call
    wedged for good, for the liveness and shutdown tests."""

    version = "stand-in-hangs-1"

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        """P(bullish) per text, or never."""
        if any(HANG_TEXT in text for text in texts):
            threading.Event().wait()
        return super().predict(texts)


def hanging_predictor() -> HangingPredictor:
    """Factory for `--model py:tests.classifier_support:hanging_predictor`."""
    return HangingPredictor()


HANGING_MODEL_SPEC = "py:tests.classifier_support:hanging_predictor"


def real_model_available() -> bool:
    """True once the model package and its committed pretrained artifact are in the repo."""
    try:
        import model

        pretrained = getattr(model, "PRETRAINED_DIR", None)
        return bool(pretrained) and Path(pretrained).is_dir() and hasattr(model, "Predictor")
    except ImportError:
        return False


def model_spec() -> str:
    """`--model` value for integration tests: the real pretrained model once it is committed
    (empty spec = the default artifact), else the keyword stand-in."""
    return "" if real_model_available() else STAND_IN_MODEL_SPEC


# ---- input data ------------------------------------------------------------------------------


def message_object(message_id: int, text: str, label: str | None, symbol: str = "SPY") -> dict:
    """A StockTwits API message object (2019 shape) around a CSV row: body HTML-escaped as
    the API does, the author's tag in `entities.sentiment.basic`."""
    return {
        "id": message_id,
        "body": html.escape(text, quote=False),
        "created_at": "2017-06-01T14:30:00Z",
        "user": {"id": 1000 + message_id % 97, "username": f"trader{message_id % 97}"},
        "source": {"id": 1, "title": "StockTwits Web", "url": "https://stocktwits.com"},
        "symbols": [{"id": 7271, "symbol": symbol, "title": "SPDR S&P 500"}],
        "entities": {"sentiment": {"basic": label.capitalize()} if label else None},
    }


class InputMessage(NamedTuple):
    """One input: its id, the text the model should see, and the author's tag."""

    id: int
    text: str
    label: str


def canonical_test_messages(data_dir: Path, count: int) -> list[InputMessage]:
    """`count` messages of the canonical test split, each with its own id. The split has
    9,621 rows, so for larger counts it is cycled: texts repeat, ids never do."""
    with gzip.open(data_dir / "test.csv.gz", "rt", encoding="utf-8", newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["message"].strip()]
    return [
        InputMessage(
            1_000_000 + i,
            rows[i % len(rows)]["message"],
            rows[i % len(rows)]["sentiment"].strip().lower(),
        )
        for i in range(count)
    ]


def input_records(
    messages: Iterable[InputMessage],
) -> list[tuple[bytes, bytes, list[tuple[str, bytes]]]]:
    """(key, value, headers) records for the input topic, as the producer writes them."""
    return [
        (
            str(m.id).encode(),
            orjson.dumps(message_object(m.id, m.text, m.label)),
            [("source", b"replay")],
        )
        for m in messages
    ]


# ---- in-memory Kafka fakes for unit tests ---------------------------------------------------


class FakeTopicPartition(NamedTuple):
    topic: str
    partition: int


class FakeRecord(NamedTuple):
    """The attributes of kafka-python's ConsumerRecord the service reads."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]
    timestamp: int


class FakeFuture:
    def __init__(self, exception: Exception | None = None) -> None:
        self.exception = exception

    def failed(self) -> bool:
        return self.exception is not None


@dataclass
class FakeProducer:
    """Records sends; `fail_next_flush` makes one batch's sends fail."""

    sent: list[tuple[str, bytes | None, bytes | None, list[tuple[str, bytes]]]] = field(
        default_factory=list
    )
    fail_sends: bool = False
    # a permanent broker refusal: the exception a send of these arguments fails with, or None
    refuse: Any = None
    transactions: list[str] = field(default_factory=list)
    offsets_in_transactions: list[dict[Any, Any]] = field(default_factory=list)
    closed: bool = False
    _pending: list[Any] = field(default_factory=list)

    def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
        partition: int | None = None,
    ) -> FakeFuture:
        # what kafka-python's producer checks before sending, so unit tests catch it too
        if value is None and key is None:
            raise ValueError("Need at least one: key or value")
        if not all(
            isinstance(h, tuple)
            and len(h) == 2
            and isinstance(h[0], str)
            and isinstance(h[1], bytes)
            for h in headers or []
        ):
            raise TypeError("All headers items must be (str, bytes) tuples")
        if self.fail_sends:
            from kafka.errors import KafkaTimeoutError

            return FakeFuture(KafkaTimeoutError("fake broker down"))
        refusal = self.refuse and self.refuse(topic, key, value, headers or [])
        if refusal:
            return FakeFuture(refusal)
        self._pending.append((topic, key, value, headers or []))
        return FakeFuture()

    def flush(self, timeout: float | None = None) -> None:
        self.sent.extend(self._pending)
        self._pending.clear()

    def partitions_for(self, topic: str) -> set[int]:
        return set(range(6))

    def init_transactions(self) -> None:
        self.transactions.append("init")

    def begin_transaction(self) -> None:
        self.transactions.append("begin")

    def send_offsets_to_transaction(self, offsets: dict[Any, Any], group: Any) -> None:
        self.offsets_in_transactions.append(dict(offsets))

    def commit_transaction(self) -> None:
        self.flush()
        self.transactions.append("commit")

    def abort_transaction(self) -> None:
        self._pending.clear()
        self.transactions.append("abort")

    def close(self, timeout: float | None = None) -> None:
        self.closed = True


@dataclass
class FakeConsumer:
    """Serves queued polls; records commits and seeks."""

    polls: list[dict[Any, list[FakeRecord]]] = field(default_factory=list)
    commits: list[dict[Any, Any]] = field(default_factory=list)
    seeks: list[tuple[Any, int]] = field(default_factory=list)
    listener: Any = None
    partitions: set[Any] = field(default_factory=set)
    closed: bool = False

    def subscribe(self, topics: list[str], listener: Any = None) -> None:
        self.listener = listener
        if listener is not None and self.partitions:
            listener.on_partitions_assigned(set(self.partitions))

    def poll(self, timeout_ms: int = 0, max_records: int | None = None) -> dict[Any, Any]:
        if self.polls:
            return self.polls.pop(0)
        return {}

    def commit(self, offsets: dict[Any, Any], timeout_ms: int | None = None) -> None:
        self.commits.append(dict(offsets))

    def commit_async(self, offsets: dict[Any, Any], callback: Any = None) -> None:
        self.commits.append(dict(offsets))

    def partitions_for_topic(self, topic: str) -> set[int]:
        return set(range(6))

    def assignment(self) -> set[Any]:
        return set(self.partitions)

    def seek(self, tp: Any, offset: int) -> None:
        self.seeks.append((tp, offset))

    def highwater(self, tp: Any) -> int | None:
        return 1000

    def position(self, tp: Any, timeout_ms: int | None = None) -> int:
        return 0

    def group_metadata(self) -> str:
        return "group"

    def close(self, autocommit: bool = True, timeout_ms: int | None = None) -> None:
        self.closed = True


def fake_records(
    topic: str, partition: int, values: Sequence[bytes | None], first_offset: int = 0
) -> dict[FakeTopicPartition, list[FakeRecord]]:
    """One poll result: `values` as consecutive records of one partition."""
    tp = FakeTopicPartition(topic, partition)
    now_ms = int(time.time() * 1000)
    return {
        tp: [
            FakeRecord(topic, partition, first_offset + i, str(i).encode(), v, [], now_ms)
            for i, v in enumerate(values)
        ]
    }


# ---- running the real service -----------------------------------------------------------


class ClassifierProcess(ServiceProcess):
    """`stocksent classify --bootstrap-servers BOOTSTRAP ARGS...` as a child process."""

    def __init__(self, bootstrap: str, args: Sequence[str], log_path: Path) -> None:
        super().__init__("classify", ["--bootstrap-servers", bootstrap, *args], log_path)


class ThreadedClassifier:
    """The service in a thread of the test process, with its own metrics registry: for
    tests that read the registry directly and should not pay a process start each."""

    def __init__(self, settings: Any, predictor: Any) -> None:
        from prometheus_client import CollectorRegistry

        from stream.metrics import ClassifierMetrics
        from stream.service import make_service

        self.registry = CollectorRegistry()
        self.metrics = ClassifierMetrics(self.registry, settings.symbols)
        self.service = make_service(settings, predictor, self.metrics)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.service.run()
        except BaseException as err:  # surfaced by stop()
            self.error = err

    def __enter__(self) -> ThreadedClassifier:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stops the loop and re-raises what killed it, if anything."""
        self.service.stop()
        self.thread.join(timeout=30)
        assert not self.thread.is_alive(), "classifier thread did not stop"
        if self.error is not None:
            raise self.error

    def sample(self, name: str, labels: dict[str, str] | None = None) -> float:
        """A metric sample value from this instance's registry (0 when absent)."""
        value = self.registry.get_sample_value(name, labels or {})
        return 0.0 if value is None else value


def classifier_settings(bootstrap: str, **overrides: Any) -> Any:
    """ClassifierSettings as the CLI would resolve them, with no environment variables and
    the metrics endpoint off unless asked for."""
    from common.options import from_arguments
    from stream.settings import ClassifierSettings

    given = {"bootstrap_servers": bootstrap, "metrics_port": "0", **overrides}
    return from_arguments(ClassifierSettings, {k: str(v) for k, v in given.items()}, environ={})


def produce_over_time(
    bootstrap: str,
    topic: str,
    records: Sequence[tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]],
    seconds: float,
) -> threading.Thread:
    """Produces `records` spread evenly over about `seconds`, from a background thread, so a
    classifier can be killed or stopped while input is still arriving."""
    from tests.kafka_support import produce

    chunks = max(1, int(seconds * 10))
    size = max(1, -(-len(records) // chunks))

    def run() -> None:
        for start in range(0, len(records), size):
            produce(bootstrap, topic, records[start : start + size])  # type: ignore[arg-type]
            time.sleep(0.1)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def records_in(bootstrap: str, topic: str) -> int:
    """Sum of the end offsets of a topic: how many records (and transaction markers) it holds."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
        return int(sum(consumer.end_offsets(partitions).values()))
    finally:
        consumer.close()


def metric_value(exposition: str, name: str) -> float:
    """A sample of a Prometheus text exposition (0 when absent)."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name == name and not sample.labels:
                return float(sample.value)
    return 0.0
