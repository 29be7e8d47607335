"""stream.service driven step by step against the in-memory Kafka twin and a manual executor:
what lands in the topics, the committed offsets, the metrics, readiness and health. No
private attributes, no sleeps: the test decides when each model call completes."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import orjson
import pytest
from kafka.errors import CommitFailedError, KafkaTimeoutError

from stream import dead_letter as dlq
from tests.classifier_support import KeywordPredictor
from tests.classifier_support import TwinClassifier as Classifier

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
GOOD_3 = orjson.dumps({"id": 13, "body": "$SPY puts"})


def test_good_and_bad_records_are_published_then_committed() -> None:
    c = Classifier.started(batch_size=3)
    c.produce(GOOD, b"junk", GOOD_2, GOOD)
    c.steps()
    assert c.broker.records("out") == [] and c.committed() == {}  # with the model
    c.executor.complete()
    c.steps()

    outputs = [orjson.loads(r.value or b"") for r in c.broker.records("out")]
    assert [o["id"] for o in outputs] == [11, 12]
    assert outputs[0]["source"] == {"topic": "in", "partition": 0, "offset": 0}
    assert outputs[0]["author_sentiment"] == "bullish" and outputs[0]["symbols"] == ["SPY"]
    [letter] = c.broker.records("dlq")
    assert letter.value == b"junk" and letter.key == b"1"
    assert dict(letter.headers)[dlq.REASON] == b"invalid_json"
    assert dict(letter.headers)[dlq.SOURCE_OFFSET] == b"1"
    assert c.commits() == [{0: 3}]  # one commit of last offset + 1, once all was written

    assert c.sample("messages_consumed_total") == 3
    assert c.sample("records_published_total") == 2
    assert c.sample("dead_letters_total", {"reason": "invalid_json"}) == 1
    assert c.sample("batch_size_count") == 1
    assert c.sample("end_to_end_seconds_count") == 2
    assert c.sample("model_info", {"version": KeywordPredictor.version}) == 1
    spy_label, other_label = [o["sentiment"]["label"] for o in outputs]
    assert c.sample("symbol_predictions_total", {"symbol": "SPY", "label": spy_label}) == 1
    assert c.sample("symbol_predictions_total", {"symbol": "other", "label": other_label}) == 1
    verdict = "agree" if spy_label == "bullish" else "disagree"
    version = KeywordPredictor.version
    assert c.sample("author_tags_total", {"agreement": verdict, "model_version": version}) == 1
    assert c.sample("consumer_lag", {"topic": "in", "partition": "0"}) == 1  # one left


def test_stop_finishes_the_open_batch_commits_and_closes() -> None:
    c = Classifier.started(batch_wait_ms=60_000)
    c.produce(GOOD)
    c.steps()  # an open batch, not yet due
    assert c.executor.submitted == 0
    c.service.stop()
    c.service.finish()  # what run() does once stopped
    c.service.close()
    assert c.output_ids() == [11]
    # the batch's asynchronous commit, then the synchronous one on the way out
    assert c.commits() == [{0: 1}, {0: 1}]
    assert c.consumer.closed and c.producer.closed


def test_readiness_needs_assigned_partitions_and_a_broker() -> None:
    c = Classifier()
    assert c.service.readiness() == (
        False,
        f"model {KeywordPredictor.version} loaded; waiting for partitions",
    )
    c.service.start()
    c.steps()  # the first poll brings the assignment
    assert c.service.readiness() == (
        True,
        f"ready: 1 partition(s), model {KeywordPredictor.version}",
    )
    c.broker.connected = False
    assert c.service.readiness() == (False, "cannot consume: no broker connection")


def test_a_stall_while_no_broker_can_be_reached_is_not_reported_as_stuck() -> None:
    c = Classifier.started()
    c.produce(GOOD)  # input waiting, and no progress on it: stuck once the timeout passed
    c.service.liveness.stall_timeout_s = -1.0  # the timeout is over
    assert not c.service.health()[0]
    c.broker.connected = False
    alive, why = c.service.health()
    assert alive and why.startswith("waiting for a broker")


@pytest.mark.parametrize("version", ["v1", "2026.05.31-abc"])
def test_model_version_is_in_every_record(version: str) -> None:
    predictor = KeywordPredictor()
    predictor.version = version  # type: ignore[misc]
    c = Classifier.started(predictor)
    c.produce(GOOD, GOOD_2)
    c.settle()
    assert [orjson.loads(r.value or b"")["model_version"] for r in c.broker.records("out")] == [
        version,
        version,
    ]


class Fragile(KeywordPredictor):
    def predict(self, texts: Sequence[str]) -> np.ndarray:
        if any("poison" in t for t in texts):
            raise RuntimeError("model blew up")
        return super().predict(texts)


def test_a_text_the_model_fails_on_goes_to_the_dlq_and_the_rest_is_labeled() -> None:
    poison = orjson.dumps({"id": 13, "body": "poison pill"})
    c = Classifier.started(Fragile())
    c.produce(GOOD, poison, GOOD_2)
    c.settle()
    assert c.output_ids() == [11, 12]
    [letter] = c.broker.records("dlq")
    assert dict(letter.headers)[dlq.REASON] == b"prediction_failed" and letter.value == poison
    assert c.sample("errors_total", {"stage": "predict"}) == 1
    assert c.committed() == {0: 3}


def test_nan_from_the_model_is_never_published_as_a_label() -> None:
    class Broken(KeywordPredictor):
        def predict(self, texts: Sequence[str]) -> np.ndarray:
            return np.full(len(texts), np.nan, dtype=np.float32)

    c = Classifier.started(Broken())
    c.produce(GOOD)
    c.settle()
    assert c.broker.records("out") == []
    assert [d[dlq.REASON] for d in c.letters()] == [b"prediction_failed"]


def test_a_failed_async_commit_is_retried_when_idle() -> None:
    c = Classifier.started()
    c.consumer.fail_commits(RuntimeError("rebalance in progress"))
    c.produce(GOOD)
    c.steps()
    c.executor.complete()
    # published and committed; the next poll brings the broker's no, and with nothing
    # else to do the loop commits the latest offsets again
    c.steps()
    assert c.commits() == [{0: 1}, {0: 1}] and c.committed() == {0: 1}
    assert c.sample("errors_total", {"stage": "commit"}) == 1
    c.steps(3)  # and only once
    assert len(c.commits()) == 2


def test_the_next_batch_is_fetched_while_one_is_scored_which_is_published_once_scored() -> None:
    c = Classifier.started(batch_size=2)
    c.produce(GOOD)
    c.steps()  # ready at once (no wait) and the model is free: it goes alone
    c.produce(GOOD_2)
    c.steps()  # the model is busy: the next record is fetched, its batch keeps filling
    assert c.executor.submitted == 1 and c.broker.records("out") == []
    c.executor.complete()
    c.steps()  # its scores are in: published and committed; the waiting batch goes next
    assert c.output_ids() == [11] and c.commits() == [{0: 1}]
    assert c.executor.submitted == 2 and c.executor.waited == 0


def test_at_most_two_batches_wait_for_the_model_and_they_are_published_in_order() -> None:
    c = Classifier.started(batch_size=1)
    c.produce(GOOD, GOOD_2, GOOD_3)
    c.steps(2)  # two batches with the model, none published: the loop did not wait
    assert len(c.executor.held) == 2 and c.broker.records("out") == []
    c.steps()  # a third is full: the loop waits for the oldest and publishes it first
    assert c.executor.waited == 1 and c.output_ids() == [11]
    assert len(c.executor.held) == 2
    c.settle()
    assert c.output_ids() == [11, 12, 13]
    assert c.commits() == [{0: 1}, {0: 2}, {0: 3}]


def test_a_batch_that_is_not_full_keeps_filling_until_the_model_is_free() -> None:
    c = Classifier.started()  # up to 100 records, whose wait is over at once
    c.produce(GOOD)
    c.steps()  # the model is free: the first record goes at once, alone
    c.produce(GOOD_2)
    c.steps()
    c.produce(GOOD_3)
    c.steps()  # the model is busy: the next two records wait for it, in one batch
    assert c.executor.submitted == 1
    c.executor.complete()
    c.steps()  # scored: published, and the waiting batch goes to the model
    assert c.output_ids() == [11] and c.executor.submitted == 2
    c.settle()
    assert c.output_ids() == [11, 12, 13]
    assert c.commits() == [{0: 1}, {0: 3}]


def test_two_workers_score_two_batches_at_once_and_publish_them_in_order() -> None:
    c = Classifier.started(batch_size=1, inference_workers=2)
    c.produce(GOOD, GOOD_2)
    c.steps(2)  # both full: each goes to a worker
    assert len(c.executor.held) == 2
    c.executor.complete(1)  # the later batch is scored first
    c.steps()
    assert c.broker.records("out") == []  # it waits for the one taken before it
    c.executor.complete()
    c.steps()
    assert c.output_ids() == [11, 12] and c.commits() == [{0: 1}, {0: 2}]
    assert c.executor.waited == 0


def test_with_two_workers_only_full_batches_are_scored_side_by_side() -> None:
    # A batch that is not full waits for every worker to be free, so it keeps growing (one
    # bigger call costs less than two small ones at once); a full one takes a free worker.
    c = Classifier.started(batch_size=2, inference_workers=2)
    c.produce(GOOD)
    c.steps()  # both workers free: the first record goes at once, alone
    c.produce(GOOD_2)
    c.steps()  # one worker busy: the second waits, though a worker is free
    assert c.executor.submitted == 1
    c.produce(GOOD_3)
    c.steps()  # a third record fills the batch: it goes to the free worker at once
    assert c.executor.submitted == 2 and len(c.executor.held) == 2
    c.settle()
    assert c.output_ids() == [11, 12, 13]


def test_revoked_partitions_leave_the_open_batch_uncommitted() -> None:
    c = Classifier.started(partitions=2, batch_wait_ms=60_000)
    c.produce(GOOD, partition=0)
    c.produce(GOOD_2, partition=1)
    c.steps()  # both in the batch being filled
    c.consumer.rebalance(revoke=[0])
    c.steps()  # the next poll hears of it
    c.service.finish()
    assert c.output_ids() == [12]
    assert c.committed() == {1: 1}  # partition 0 is re-read by its new owner


def test_a_partition_revoked_while_its_batch_is_scored_is_neither_published_nor_committed() -> None:
    c = Classifier.started(partitions=2, batch_size=1, inference_workers=2)
    c.produce(GOOD, partition=0)
    c.produce(GOOD_2, partition=1)
    c.steps(2)  # one batch per partition, both with the model
    c.consumer.rebalance(revoke=[0])
    c.steps()  # heard in the next poll, while the batches are with the model
    c.settle()
    assert c.output_ids() == [12]
    assert c.commits() == [{1: 1}]


def test_a_revoked_partition_is_dropped_from_every_batch_with_the_model() -> None:
    c = Classifier.started(partitions=2, batch_size=2)
    c.produce(GOOD, GOOD_2, partition=0)
    c.produce(GOOD_3, partition=1)
    c.steps()  # [p0@0, p0@1] full: to the model
    c.produce(GOOD, partition=0)
    c.steps()  # [p0@2, p1@0] full: queued for the model
    assert c.executor.submitted == 2
    c.consumer.rebalance(revoke=[0])
    c.steps()  # heard in the next poll, while the batches are with the model
    c.settle()
    assert c.output_ids() == [13]  # partition 1 only
    assert c.commits() == [{1: 1}]


def test_a_revoked_partition_given_back_is_read_again_from_its_committed_offset() -> None:
    c = Classifier.started(partitions=2, batch_size=1)
    c.produce(GOOD, GOOD_2, partition=0)
    c.steps()  # p0@0 with the model
    c.executor.complete()
    c.steps()  # p0@0 committed; p0@1 taken
    c.consumer.rebalance(revoke=[0])
    c.steps()  # dropped, uncommitted
    c.consumer.rebalance(assign=[0])
    c.settle()
    assert c.output_ids() == [11, 12]  # each once: nothing lost, nothing twice
    assert c.committed() == {0: 2}


def test_each_batch_times_its_wait_for_the_model_its_call_and_its_publishing() -> None:
    c = Classifier.started(batch_size=1)
    c.produce(GOOD, GOOD_2)
    c.settle()
    for name in ("scoring_wait_seconds", "inference_seconds", "publish_seconds"):
        assert c.sample(f"{name}_count") == 2, name
    assert (c.sample("publish_seconds_sum") or 0.0) > 0.0


class ConstantPredictor:
    """Scores every text `probability`."""

    def __init__(self, version: str, probability: float) -> None:
        self.version = version
        self.probability = probability
        self.calls = 0

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        return np.full(len(texts), self.probability, dtype=np.float32)


def test_a_new_model_takes_over_at_a_batch_boundary_and_in_flight_batches_keep_theirs() -> None:
    # Batch 1 is taken with v1 and still being scored when v2 is handed over; batch 2 (full,
    # so it goes to the second worker at once) is taken with v2. Each record is scored by,
    # and names, the model its batch was taken with.
    good_3 = orjson.dumps({"id": 13, "body": "$SPY puts", "symbols": [{"symbol": "SPY"}],
                           "entities": {"sentiment": {"basic": "Bullish"}}})  # fmt: skip
    old, new = ConstantPredictor("v1", 0.9), ConstantPredictor("v2", 0.1)
    handover: list[ConstantPredictor] = []
    c = Classifier.started(
        old, model_updates=lambda: handover.pop() if handover else None,
        batch_size=2, inference_workers=2,
    )  # fmt: skip
    c.produce(GOOD, GOOD_2)
    c.steps()  # batch 1 taken with v1; its call is held
    assert c.service.model_version == "v1"
    handover.append(new)  # the follower hands v2 over while batch 1 is being scored
    c.produce(good_3, good_3)
    c.steps()  # batch 2 taken with v2, to the other worker at once
    assert c.service.model_version == "v2" and len(c.executor.held) == 2
    assert c.sample("model_info", {"version": "v2"}) == 1
    assert c.sample("model_info", {"version": "v1"}) is None
    c.settle()

    records = [orjson.loads(r.value or b"") for r in c.broker.records("out")]
    assert [(r["id"], r["model_version"], r["sentiment"]["probability"]) for r in records] == [
        (11, "v1", pytest.approx(0.9)),
        (12, "v1", pytest.approx(0.9)),
        (13, "v2", pytest.approx(0.1)),
        (13, "v2", pytest.approx(0.1)),
    ]
    assert (old.calls, new.calls) == (1, 1)
    assert c.commits() == [{0: 2}, {0: 4}]
    # live accuracy per version: each agreement counted under the version that labeled
    tags = {
        (agreement, version): c.sample(
            "author_tags_total", {"agreement": agreement, "model_version": version}
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
    handover = [ConstantPredictor("v2", 0.5)]
    c = Classifier(
        ConstantPredictor("v1", 0.5), model_updates=lambda: handover.pop() if handover else None
    )
    assert "model v1" in c.service.readiness()[1]
    c.service.start()
    c.produce(GOOD)
    c.steps()  # the batch taken swaps the model
    assert c.service.readiness() == (True, "ready: 1 partition(s), model v2")


def test_a_failed_poll_is_counted_and_retried() -> None:
    c = Classifier.started()
    c.produce(GOOD)
    c.consumer.fail_polls(KafkaTimeoutError("broker away"))
    c.steps()  # the poll fails: counted, nothing read
    assert c.sample("errors_total", {"stage": "consume"}) == 1 and c.executor.submitted == 0
    assert c.service.readiness()[0]  # not for long enough to be "cannot consume"
    c.settle()
    assert c.output_ids() == [11] and c.committed() == {0: 1}


@pytest.mark.parametrize(
    "error", [RuntimeError("a bug"), CommitFailedError("the group moved on")], ids=type
)
def test_a_poll_error_that_is_not_the_brokers_ends_the_loop(error: Exception) -> None:
    c = Classifier.started()
    c.consumer.fail_polls(error)
    with pytest.raises(type(error)):
        c.steps()
