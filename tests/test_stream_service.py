"""stream.service with in-memory Kafka fakes: publish, DLQ, commit order, transactions,
revocation, model failures, publish failures, metrics."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import numpy as np
import orjson
import pytest
from prometheus_client import CollectorRegistry

from stream import dead_letter as dlq
from stream.metrics import ClassifierMetrics
from stream.service import ClassifierService
from tests.classifier_support import (
    FakeConsumer,
    FakeProducer,
    FakeTopicPartition,
    KeywordPredictor,
    classifier_settings,
    fake_records,
)

P = "stocksent_classifier_"
GOOD = orjson.dumps(
    {
        "id": 11,
        "body": "$SPY calls",
        "symbols": [{"symbol": "SPY"}],
        "entities": {"sentiment": {"basic": "Bullish"}},
    }
)
GOOD_2 = orjson.dumps({"id": 12, "body": "$XYZ sell", "symbols": [{"symbol": "XYZ"}]})


def service(
    consumer: FakeConsumer,
    producer: FakeProducer,
    predictor: object | None = None,
    **overrides: object,
) -> tuple[ClassifierService, CollectorRegistry]:
    # one model worker unless a test asks for more: the rules for several are tested apart
    given: dict[str, object] = {
        "batch_size": 100,
        "batch_wait_ms": 0,
        "symbols": "SPY",
        "inference_workers": 1,
    }
    settings = classifier_settings(
        "fake:9092", input_topic="in", output_topic="out", dlq_topic="dlq",
        **{**given, **overrides},
    )  # fmt: skip
    registry = CollectorRegistry()
    svc = ClassifierService(
        settings, predictor or KeywordPredictor(), ClassifierMetrics(registry, settings.symbols),
        consumer, producer,
    )  # fmt: skip
    return svc, registry


def run_polls(svc: ClassifierService, polls: int) -> None:
    svc.consumer.subscribe(["in"], listener=None)
    for _ in range(polls):
        svc.step()
    settle(svc)


def settle(svc: ClassifierService) -> None:
    """Steps until every queued poll is taken and no batch is being scored: a scored batch
    is published by the first step after its scores are in."""
    deadline = time.monotonic() + 10
    while svc.consumer.polls or svc._in_flight:
        assert time.monotonic() < deadline, "the loop did not settle"
        svc.step()


def run_until_drained(svc: ClassifierService) -> None:
    """The service's own `run()`, asked to stop at its first poll after the queued polls are
    all taken: it then finishes its batches, commits and closes the clients."""
    consumer = svc.consumer
    serve = consumer.poll

    def poll(timeout_ms: int = 0, max_records: int | None = None) -> dict[object, list[object]]:
        if not consumer.polls:
            svc.stop()
        return serve(timeout_ms, max_records)

    consumer.poll = poll
    svc.run()


def commits(consumer: FakeConsumer) -> list[dict[int, int]]:
    """Each commit so far as partition -> committed offset, in order."""
    return [{tp.partition: om.offset for tp, om in c.items()} for c in consumer.commits]


class SlowKeywordPredictor(KeywordPredictor):
    """Takes its time, so the loop fetches the next batch while this one is scored."""

    DELAY_S = 0.2

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        time.sleep(self.DELAY_S)
        return super().predict(texts)


def test_good_and_bad_records_are_published_then_committed() -> None:
    consumer = FakeConsumer(polls=[fake_records("in", 0, [GOOD, b"junk", GOOD_2], first_offset=5)])
    producer = FakeProducer()
    svc, registry = service(consumer, producer)
    run_polls(svc, 1)

    outputs = [s for s in producer.sent if s[0] == "out"]
    letters = [s for s in producer.sent if s[0] == "dlq"]
    assert [orjson.loads(v)["id"] for _, _, v, _ in outputs] == [11, 12]
    first = orjson.loads(outputs[0][2])
    assert first["source"] == {"topic": "in", "partition": 0, "offset": 5}
    assert first["author_sentiment"] == "bullish" and first["symbols"] == ["SPY"]
    [(_, key, value, headers)] = letters
    assert value == b"junk" and key == b"1"
    assert dict(headers)[dlq.REASON] == b"invalid_json"
    assert dict(headers)[dlq.SOURCE_OFFSET] == b"6"
    # one commit, after the flush, of last offset + 1
    [commit] = consumer.commits
    assert {tp.partition: om.offset for tp, om in commit.items()} == {0: 8}

    def sample(name: str, labels: dict[str, str] | None = None) -> float | None:
        return registry.get_sample_value(P + name, labels or {})

    assert sample("messages_consumed_total") == 3
    assert sample("records_published_total") == 2
    assert sample("dead_letters_total", {"reason": "invalid_json"}) == 1
    assert sample("batch_size_count") == 1
    assert sample("end_to_end_seconds_count") == 2
    assert sample("model_info", {"version": KeywordPredictor.version}) == 1
    labels = [orjson.loads(v)["sentiment"]["label"] for _, _, v, _ in outputs]
    spy_label, other_label = labels
    assert sample("symbol_predictions_total", {"symbol": "SPY", "label": spy_label}) == 1
    assert sample("symbol_predictions_total", {"symbol": "other", "label": other_label}) == 1
    verdict = "agree" if spy_label == "bullish" else "disagree"
    version = KeywordPredictor.version
    assert sample("author_tags_total", {"agreement": verdict, "model_version": version}) == 1
    assert sample("consumer_lag", {"topic": "in", "partition": "0"}) == 1000 - 8


def test_exactly_once_is_one_transaction_per_batch_with_its_offsets() -> None:
    consumer = FakeConsumer(
        polls=[fake_records("in", 0, [GOOD]), fake_records("in", 1, [GOOD_2, b"{}"])]
    )
    producer = FakeProducer()
    svc, _ = service(consumer, producer, processing_guarantee="exactly-once")
    run_until_drained(svc)
    # the service's own run path initialises the transactions, before the first one begins
    assert producer.transactions == ["init", "begin", "commit", "begin", "commit"]
    assert consumer.closed and producer.closed
    assert consumer.commits == []  # offsets go through the transaction only
    assert [{tp.partition: om.offset for tp, om in o.items()}
            for o in producer.offsets_in_transactions] == [{0: 1}, {1: 2}]  # fmt: skip


def test_revoked_partitions_leave_the_open_batch_uncommitted() -> None:
    consumer = FakeConsumer(
        polls=[{**fake_records("in", 0, [GOOD]), **fake_records("in", 1, [GOOD_2])}]
    )
    producer = FakeProducer()
    svc, _ = service(consumer, producer, batch_wait_ms=60_000)
    run_polls(svc, 1)
    assert len(svc.batcher) == 2 and producer.sent == []  # still filling
    svc.on_revoked({FakeTopicPartition("in", 0)})
    svc.process(svc.batcher.take())
    assert [orjson.loads(v)["id"] for _, _, v, _ in producer.sent] == [12]
    [commit] = consumer.commits
    assert {tp.partition for tp in commit} == {1}  # partition 0 is re-read by its new owner


def test_a_text_the_model_fails_on_goes_to_the_dlq_and_the_rest_is_labeled() -> None:
    class Fragile(KeywordPredictor):
        def predict(self, texts: Sequence[str]) -> np.ndarray:
            if any("poison" in t for t in texts):
                raise RuntimeError("model blew up")
            return super().predict(texts)

    poison = orjson.dumps({"id": 13, "body": "poison pill"})
    consumer = FakeConsumer(polls=[fake_records("in", 0, [GOOD, poison, GOOD_2])])
    producer = FakeProducer()
    svc, registry = service(consumer, producer, predictor=Fragile())
    run_polls(svc, 1)
    assert sorted(orjson.loads(v)["id"] for t, _, v, _ in producer.sent if t == "out") == [11, 12]
    [letter] = [s for s in producer.sent if s[0] == "dlq"]
    assert dict(letter[3])[dlq.REASON] == b"prediction_failed" and letter[2] == poison
    assert registry.get_sample_value(P + "errors_total", {"stage": "predict"}) == 1
    assert len(consumer.commits) == 1


def test_nan_from_the_model_is_never_published_as_a_label() -> None:
    class Broken(KeywordPredictor):
        def predict(self, texts: Sequence[str]) -> np.ndarray:
            return np.full(len(texts), np.nan, dtype=np.float32)

    consumer = FakeConsumer(polls=[fake_records("in", 0, [GOOD])])
    producer = FakeProducer()
    svc, _ = service(consumer, producer, predictor=Broken())
    run_polls(svc, 1)
    assert [t for t, *_ in producer.sent] == ["dlq"]


def test_failed_publish_commits_nothing_and_rewinds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("stream.service.RETRY_BACKOFF_S", 0.0)
    tp = FakeTopicPartition("in", 2)
    consumer = FakeConsumer(polls=[fake_records("in", 2, [GOOD, GOOD_2], first_offset=40)],
                            partitions={tp})  # fmt: skip
    producer = FakeProducer(fail_sends=True)
    svc, registry = service(consumer, producer)
    run_polls(svc, 1)
    assert consumer.commits == []
    assert consumer.seeks == [(tp, 40)]
    assert registry.get_sample_value(P + "errors_total", {"stage": "produce"}) == 1
    assert registry.get_sample_value(P + "messages_consumed_total") == 0


def test_stop_finishes_the_open_batch_commits_and_closes() -> None:
    tp = FakeTopicPartition("in", 0)
    consumer = FakeConsumer(polls=[fake_records("in", 0, [GOOD])], partitions={tp})
    producer = FakeProducer()
    svc, _ = service(consumer, producer, batch_wait_ms=60_000)
    svc.step()  # open batch, not yet due
    svc.stop()
    svc.run()
    # the batch's asynchronous commit, then the synchronous one on the way out
    assert [{t.partition: om.offset for t, om in c.items()} for c in consumer.commits] == [
        {0: 1},
        {0: 1},
    ]
    assert consumer.closed and producer.closed


def test_readiness_needs_assigned_partitions() -> None:
    consumer = FakeConsumer()
    svc, _ = service(consumer, FakeProducer())
    assert svc.readiness()[0] is False
    svc.on_assigned({FakeTopicPartition("in", 0)})
    assert svc.readiness()[0] is True


@pytest.mark.parametrize("version", ["v1", "2026.05.31-abc"])
def test_model_version_is_in_every_record(version: str) -> None:
    class Versioned(KeywordPredictor):
        pass

    predictor = Versioned()
    predictor.version = version  # type: ignore[misc]
    consumer = FakeConsumer(polls=[fake_records("in", 0, [GOOD])])
    producer = FakeProducer()
    svc, _ = service(consumer, producer, predictor=predictor)
    run_polls(svc, 1)
    assert orjson.loads(producer.sent[0][2])["model_version"] == version


def test_a_failed_async_commit_is_retried_when_idle() -> None:
    tp = FakeTopicPartition("in", 0)
    consumer = FakeConsumer(polls=[fake_records("in", 0, [GOOD])], partitions={tp})
    producer = FakeProducer()
    svc, registry = service(consumer, producer)
    run_polls(svc, 1)
    [first] = consumer.commits
    svc._on_commit(first, RuntimeError("rebalance in progress"))  # the broker said no
    svc.step()  # nothing polled: the latest offsets are committed again
    assert consumer.commits == [first, first]
    assert registry.get_sample_value(P + "errors_total", {"stage": "commit"}) == 1
    svc.step()  # and only once
    assert len(consumer.commits) == 2


def test_a_partition_revoked_while_its_batch_is_scored_is_neither_published_nor_committed() -> None:
    consumer = FakeConsumer(polls=[fake_records("in", 0, [GOOD]), fake_records("in", 1, [GOOD_2])])
    producer = FakeProducer()
    svc, _ = service(consumer, producer)
    svc.consumer.subscribe(["in"], listener=None)
    svc.step()  # batch 1 goes to the inference thread: not published yet
    assert producer.sent == [] and consumer.commits == []
    svc.on_revoked({FakeTopicPartition("in", 0)})
    settle(svc)
    assert [orjson.loads(v)["id"] for _, _, v, _ in producer.sent] == [12]
    assert commits(consumer) == [{1: 1}]


def test_a_failed_batch_rewinds_the_batch_scored_after_it_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("stream.service.RETRY_BACKOFF_S", 0.0)
    tp2, tp3 = FakeTopicPartition("in", 2), FakeTopicPartition("in", 3)
    consumer = FakeConsumer(
        polls=[
            fake_records("in", 2, [GOOD, GOOD_2], first_offset=40),
            {**fake_records("in", 2, [GOOD], first_offset=42),
             **fake_records("in", 3, [GOOD], first_offset=7)},
        ],
        partitions={tp2, tp3},
    )  # fmt: skip
    producer = FakeProducer(fail_sends=True)
    # slow scores: the second batch is taken while the first is still being scored
    svc, _ = service(consumer, producer, predictor=SlowKeywordPredictor())
    run_polls(svc, 2)
    assert consumer.commits == []
    # the failed batch from its first offset; the later one only where it went further
    assert consumer.seeks == [(tp2, 40), (tp3, 7)]
    assert len(svc.batcher) == 0


def test_the_next_batch_is_fetched_while_one_is_scored_which_is_published_once_scored() -> None:
    consumer = FakeConsumer(polls=[fake_records("in", 0, [GOOD]), fake_records("in", 1, [GOOD_2])])
    producer = FakeProducer()
    svc, _ = service(consumer, producer, predictor=SlowKeywordPredictor(), batch_size=1)
    svc.consumer.subscribe(["in"], listener=None)
    svc.step()  # batch 1 (full at one record) goes to the inference thread
    svc.batcher = type(svc.batcher)(100, 60_000)  # from now on a batch fills for a minute
    svc.step()  # batch 1 is still being scored: the loop fetches the next records meanwhile
    assert len(svc.batcher) == 1 and producer.sent == []
    [scoring] = svc._in_flight
    scoring.probabilities.result(timeout=5)
    svc.step()  # its scores are in: published and committed, though no other batch is due
    assert [orjson.loads(v)["id"] for _, _, v, _ in producer.sent] == [11]
    assert commits(consumer) == [{0: 1}]
    assert len(svc.batcher) == 1  # the next one still filling


def three_polls_of_one_record() -> FakeConsumer:
    """Polls returning ids 11, 12 and 13 of partition 0, one record each."""
    good_3 = orjson.dumps({"id": 13, "body": "$SPY puts"})
    return FakeConsumer(
        polls=[fake_records("in", 0, [GOOD]), fake_records("in", 0, [GOOD_2], first_offset=1),
               fake_records("in", 0, [good_3], first_offset=2)]
    )  # fmt: skip


def test_at_most_two_batches_wait_for_the_model_and_they_are_published_in_order() -> None:
    consumer = three_polls_of_one_record()
    producer = FakeProducer()
    svc, _ = service(consumer, producer, predictor=SlowKeywordPredictor(), batch_size=1)
    svc.consumer.subscribe(["in"], listener=None)
    svc.step()
    svc.step()  # two batches with the model, none published: the loop did not wait
    assert len(svc._in_flight) == 2 and producer.sent == []
    svc.step()  # a third is ready: the loop waits for the oldest and publishes it first
    assert [orjson.loads(v)["id"] for _, _, v, _ in producer.sent] == [11]
    assert len(svc._in_flight) == 2
    settle(svc)
    assert [orjson.loads(v)["id"] for _, _, v, _ in producer.sent] == [11, 12, 13]
    assert commits(consumer) == [
        {0: 1},
        {0: 2},
        {0: 3},
    ]


def test_a_batch_that_is_not_full_keeps_filling_until_the_model_is_free() -> None:
    consumer = three_polls_of_one_record()
    producer = FakeProducer()
    # batches of up to 100 records whose wait is over at once: only the model being busy
    # holds one back
    svc, _ = service(consumer, producer, predictor=SlowKeywordPredictor(), batch_wait_ms=0)
    svc.consumer.subscribe(["in"], listener=None)
    svc.step()  # the model is free: the first record goes at once, alone
    [scoring] = svc._in_flight
    svc.step()
    svc.step()  # the model is busy: the next two records wait for it, in one batch
    assert len(svc._in_flight) == 1 and len(svc.batcher) == 2
    scoring.probabilities.result(timeout=5)
    svc.step()  # scored: published, and the waiting batch goes to the model
    assert [orjson.loads(v)["id"] for _, _, v, _ in producer.sent] == [11]
    assert len(svc._in_flight) == 1 and len(svc.batcher) == 0
    settle(svc)
    assert [orjson.loads(v)["id"] for _, _, v, _ in producer.sent] == [11, 12, 13]
    assert commits(consumer) == [
        {0: 1},
        {0: 3},
    ]


class OutOfOrderPredictor(KeywordPredictor):
    """Scores the batch holding `first_text` only once another call has finished, so with
    two workers the later batch is scored first (and with one, it would time out)."""

    def __init__(self, first_text: str) -> None:
        self.first_text = first_text
        self.other_finished = threading.Event()
        self.finished: list[str] = []

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        if self.first_text in texts:
            assert self.other_finished.wait(timeout=2), "the calls did not run at once"
        else:
            time.sleep(0.05)
        scores = super().predict(texts)
        self.finished.extend(texts)
        self.other_finished.set()
        return scores


def test_two_workers_score_two_batches_at_once_and_publish_them_in_order() -> None:
    consumer = three_polls_of_one_record()
    producer = FakeProducer()
    predictor = OutOfOrderPredictor(first_text="$SPY calls")
    svc, _ = service(consumer, producer, predictor, batch_size=1, inference_workers=2)
    run_polls(svc, 3)
    # the first batch was scored after the second, and nothing was dead-lettered
    assert predictor.finished.index("$SPY calls") > predictor.finished.index("$XYZ sell")
    assert [(t, orjson.loads(v)["id"]) for t, _, v, _ in producer.sent] == [
        ("out", 11),
        ("out", 12),
        ("out", 13),
    ]
    assert commits(consumer) == [
        {0: 1},
        {0: 2},
        {0: 3},
    ]


def test_with_two_workers_only_full_batches_are_scored_side_by_side() -> None:
    # A batch that is not full waits for every worker to be free, so it keeps growing (one
    # bigger call costs less than two small ones at once); a full one takes a free worker.
    good_3 = orjson.dumps({"id": 13, "body": "$SPY puts"})
    polls = [
        fake_records("in", 0, [GOOD]),
        fake_records("in", 0, [GOOD_2], first_offset=1),
        fake_records("in", 0, [good_3, good_3], first_offset=2),
    ]
    producer = FakeProducer()
    svc, _ = service(
        FakeConsumer(polls=polls), producer, predictor=SlowKeywordPredictor(),
        batch_size=2, batch_wait_ms=0, inference_workers=2,
    )  # fmt: skip
    svc.consumer.subscribe(["in"], listener=None)
    svc.step()  # both workers free: the first record goes at once, alone
    svc.step()  # one worker busy: the second waits, though a worker is free
    assert len(svc._in_flight) == 1 and len(svc.batcher) == 1
    svc.step()  # a third record fills the batch: it goes to the free worker at once
    assert len(svc._in_flight) == 2 and len(svc.batcher) == 0
    settle(svc)
    assert [orjson.loads(v)["id"] for _, _, v, _ in producer.sent] == [11, 12, 13, 13]


def test_a_revoked_partition_is_dropped_from_every_batch_with_the_model() -> None:
    consumer = FakeConsumer(
        polls=[fake_records("in", 0, [GOOD]),
               {**fake_records("in", 0, [GOOD_2], first_offset=1),
                **fake_records("in", 1, [GOOD_2])}]
    )  # fmt: skip
    producer = FakeProducer()
    svc, _ = service(consumer, producer, predictor=SlowKeywordPredictor(), batch_size=1)
    svc.consumer.subscribe(["in"], listener=None)
    svc.step()
    svc.step()  # the second poll is one batch too (partitions 0 and 1), queued for the model
    assert len(svc._in_flight) == 2
    svc.on_revoked({FakeTopicPartition("in", 0)})
    settle(svc)
    assert [orjson.loads(v)["id"] for _, _, v, _ in producer.sent] == [12]  # partition 1 only
    assert commits(consumer) == [{1: 1}]


def test_each_batch_times_its_wait_for_the_model_its_call_and_its_publishing() -> None:
    polls = [fake_records("in", 0, [GOOD]), fake_records("in", 0, [GOOD_2], first_offset=1)]
    consumer = FakeConsumer(polls=polls)
    producer = FakeProducer()
    svc, registry = service(consumer, producer, predictor=SlowKeywordPredictor(), batch_size=1)
    run_polls(svc, 2)  # the second batch is taken while the model still scores the first

    def count(name: str) -> float | None:
        return registry.get_sample_value(f"{P}{name}_count")

    def total(name: str) -> float:
        return registry.get_sample_value(f"{P}{name}_sum") or 0.0

    assert count("scoring_wait_seconds") == count("inference_seconds") == 2
    assert count("publish_seconds") == 2
    # the second batch waited for the first one's (slow) call
    assert total("scoring_wait_seconds") >= 0.5 * SlowKeywordPredictor.DELAY_S
    assert total("publish_seconds") > 0.0


class ConstantPredictor:
    """Scores every text `probability`; with a `gate`, each call waits for it first."""

    def __init__(
        self, version: str, probability: float, gate: threading.Event | None = None
    ) -> None:
        self.version = version
        self.probability = probability
        self.gate = gate
        self.calls = 0

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        if self.gate is not None:
            assert self.gate.wait(timeout=5), "the gate was never opened"
        self.calls += 1
        return np.full(len(texts), self.probability, dtype=np.float32)


def test_a_new_model_takes_over_at_a_batch_boundary_and_in_flight_batches_keep_theirs() -> None:
    # Batch 1 is taken with v1 and held in scoring (gate) while v2 is handed over; batch 2
    # (full, so it goes to the second worker at once) is taken with v2. Each record is
    # scored by, and names, the model its batch was taken with.
    good_3 = orjson.dumps({"id": 13, "body": "$SPY puts", "symbols": [{"symbol": "SPY"}],
                           "entities": {"sentiment": {"basic": "Bullish"}}})  # fmt: skip
    polls = [
        fake_records("in", 0, [GOOD, GOOD_2]),
        fake_records("in", 0, [good_3, good_3], first_offset=2),
    ]
    gate = threading.Event()
    old, new = ConstantPredictor("v1", 0.9, gate), ConstantPredictor("v2", 0.1)
    handover: list[ConstantPredictor] = []
    producer = FakeProducer()
    consumer = FakeConsumer(polls=polls)
    svc, registry = service(consumer, producer, old, batch_size=2, inference_workers=2)
    svc._model_updates = lambda: handover.pop() if handover else None
    consumer.subscribe(["in"])
    svc.step()  # batch 1 taken with v1; its scoring waits at the gate
    assert len(svc._in_flight) == 1 and svc.model_version == "v1"
    handover.append(new)  # the follower hands v2 over while batch 1 is being scored
    svc.step()  # batch 2 taken with v2, scored at once by the other worker
    assert len(svc._in_flight) == 2 and svc.model_version == "v2"
    assert registry.get_sample_value(P + "model_info", {"version": "v2"}) == 1
    assert registry.get_sample_value(P + "model_info", {"version": "v1"}) is None
    gate.set()
    settle(svc)

    records = [orjson.loads(v) for t, _, v, _ in producer.sent if t == "out"]
    assert [(r["id"], r["model_version"], r["sentiment"]["probability"]) for r in records] == [
        (11, "v1", pytest.approx(0.9)),
        (12, "v1", pytest.approx(0.9)),
        (13, "v2", pytest.approx(0.1)),
        (13, "v2", pytest.approx(0.1)),
    ]
    assert (old.calls, new.calls) == (1, 1)
    assert commits(consumer) == [{0: 2}, {0: 4}]
    # live accuracy per version: each agreement counted under the version that labeled
    tags = {
        (agreement, version): registry.get_sample_value(
            P + "author_tags_total", {"agreement": agreement, "model_version": version}
        )
        for agreement in ("agree", "disagree")
        for version in ("v1", "v2")
    }
    assert tags == {
        ("agree", "v1"): 1,  # id 11 tagged Bullish, v1 says bullish
        ("disagree", "v1"): 0,
        ("agree", "v2"): 0,
        ("disagree", "v2"): 2,  # id 13 tagged Bullish twice, v2 says bearish
    }


def test_readiness_names_the_serving_version() -> None:
    svc, _ = service(FakeConsumer(), FakeProducer(), ConstantPredictor("v1", 0.5))
    assert "model v1" in svc.readiness()[1]
    svc._model_updates = lambda: ConstantPredictor("v2", 0.5)
    svc.on_assigned({FakeTopicPartition("in", 0)})
    svc._start({})  # the next batch taken swaps the model
    assert svc.readiness() == (True, "ready: 1 partition(s), model v2")
