"""Helpers for the classifier tests: a stand-in model, in-memory Kafka fakes, StockTwits
message objects built from the canonical CSV, and running `stocksent classify`."""

from __future__ import annotations

import csv
import gzip
import html
import threading
import time
from collections.abc import Iterable, Sequence
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


# ---- records for unit tests ------------------------------------------------------------------


def fake_records(
    topic: str, partition: int, values: Sequence[bytes | None], first_offset: int = 0
) -> dict[Any, list[Any]]:
    """One poll result: `values` as consecutive records of one partition."""
    from stream.memory_kafka import MemoryRecord, TopicPartition

    tp = TopicPartition(topic, partition)
    now_ms = int(time.time() * 1000)
    return {
        tp: [
            MemoryRecord(topic, partition, first_offset + i, str(i).encode(), v, [], now_ms)
            for i, v in enumerate(values)
        ]
    }


# ---- the service against the in-memory Kafka twin ---------------------------------------------


class TwinClassifier:
    """A service wired to the twin: `broker` holds the topics, `executor` the model calls."""

    def __init__(
        self,
        predictor: Any = None,
        partitions: int = 1,
        model_updates: Any = None,
        **overrides: object,
    ) -> None:
        # one model worker unless a test asks for more: the rules for several are tested apart
        given: dict[str, object] = {
            "batch_size": 100,
            "batch_wait_ms": 0,
            "symbols": "SPY",
            "inference_workers": 1,
            **overrides,
        }
        from prometheus_client import CollectorRegistry

        from stream.manual_executor import ManualExecutor
        from stream.memory_kafka import MemoryBroker, MemoryConsumer, MemoryProducer
        from stream.metrics import ClassifierMetrics
        from stream.service import ClassifierService

        settings = classifier_settings(
            "memory:9092", input_topic="in", output_topic="out", dlq_topic="dlq", **given
        )
        self.broker = MemoryBroker({"in": partitions, "out": partitions, "dlq": 1})
        self.consumer = MemoryConsumer(self.broker)
        self.producer = MemoryProducer(self.broker, transactional=settings.exactly_once)
        self.executor = ManualExecutor()
        self.registry = CollectorRegistry()
        self.service = ClassifierService(
            settings, predictor or KeywordPredictor(),
            ClassifierMetrics(self.registry, settings.symbols), self.consumer, self.producer,
            model_updates, executor=self.executor, retry_backoff_s=0.0,
        )  # fmt: skip

    @classmethod
    def started(cls, *args: Any, **kwargs: Any) -> TwinClassifier:
        """A twin classifier, started (subscribed; transactions initialised)."""
        classifier = cls(*args, **kwargs)
        classifier.service.start()
        return classifier

    def produce(self, *values: bytes | None, partition: int = 0) -> None:
        self.broker.produce("in", partition, values)

    def steps(self, count: int = 1) -> None:
        for _ in range(count):
            self.service.step()

    def settle(self) -> None:
        """Completes every model call and steps until everything produced is committed."""
        for _ in range(100):
            self.executor.complete_all()
            self.service.step()
            if not self.executor.held and self.caught_up():
                return
        raise AssertionError("the loop did not settle")

    def caught_up(self) -> bool:
        committed = self.broker.committed("classifier")
        return all(
            committed.get(tp, 0) == self.broker.end_offset(tp) for tp in self.consumer.assignment()
        )

    def output_ids(self) -> list[int]:
        return [orjson.loads(r.value or b"")["id"] for r in self.broker.records("out")]

    def letters(self) -> list[dict[str, bytes]]:
        return [dict(r.headers) for r in self.broker.records("dlq")]

    def committed(self) -> dict[int, int]:
        return {tp.partition: o for tp, o in self.broker.committed("classifier").items()}

    def commits(self) -> list[dict[int, int]]:
        return [{tp.partition: o for tp, o in c.items()} for c in self.consumer.commits]

    def sample(self, name: str, labels: dict[str, str] | None = None) -> float | None:
        return self.registry.get_sample_value("stocksent_classifier_" + name, labels or {})


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
