"""The classifier against the real broker: 10,000 canonical messages in, one labeled record
per id out, valid against the schema, with the model's offline label; metrics match topics."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import orjson
import pytest

from stream.decode import DeadLetterReason
from stream.predictor import SentimentPredictor, label_for, load_predictor
from stream.sentiment_record import schema
from tests.classifier_support import (
    InputMessage,
    ThreadedClassifier,
    canonical_test_messages,
    classifier_settings,
    input_records,
    model_spec,
)
from tests.kafka_support import drain, produce

pytestmark = pytest.mark.integration

COUNT = 10_000
P = "stocksent_classifier_"


@pytest.fixture(scope="module")
def predictor() -> SentimentPredictor:
    """The model the service runs (the real one once committed), loaded once."""
    return load_predictor(model_spec())


@pytest.fixture
def canonical(shared_data_dir: Path) -> list[InputMessage]:
    messages = canonical_test_messages(shared_data_dir, COUNT)
    assert len(messages) == COUNT
    return messages


def offline_labels(
    predictor: SentimentPredictor, messages: list[InputMessage]
) -> dict[int, tuple[str, float]]:
    """What the model says about each message outside the pipeline."""
    probabilities = np.concatenate(
        [
            predictor.predict([m.text for m in messages[i : i + 512]])
            for i in range(0, len(messages), 512)
        ]
    )
    return {
        m.id: (label_for(float(p)), float(p)) for m, p in zip(messages, probabilities, strict=True)
    }


def check_outputs(
    records: list[Any],
    messages: list[InputMessage],
    offline: dict[int, tuple[str, float]],
    version: str,
    input_topic: str,
) -> None:
    validator = jsonschema.Draft202012Validator(
        schema(), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    by_id: Counter[int] = Counter()
    texts = {m.id: m.text for m in messages}
    mismatched = []
    for record in records:
        value = orjson.loads(record.value)
        validator.validate(value)
        by_id[value["id"]] += 1
        assert record.key == str(value["id"]).encode()
        assert value["model_version"] == version
        assert value["body"] == texts[value["id"]]
        assert value["source"]["topic"] == input_topic
        label, probability = offline[value["id"]]
        # Batches pad to their own lengths, so float noise may differ in the last digits;
        # a label can only differ for a probability within that noise of the threshold.
        assert value["sentiment"]["probability"] == pytest.approx(probability, abs=1e-4)
        if value["sentiment"]["label"] != label and abs(probability - 0.5) > 1e-4:
            mismatched.append(value["id"])
    assert not mismatched, f"labels differ from offline prediction for {mismatched[:10]}"
    duplicates = [i for i, n in by_id.items() if n > 1]
    assert not duplicates, f"{len(duplicates)} ids published more than once"
    assert set(by_id) == set(texts), f"missing ids: {sorted(set(texts) - set(by_id))[:10]}"


# two model workers: batches scored at once must still come out in input order
@pytest.mark.parametrize(
    ("guarantee", "workers"), [("at-least-once", 1), ("exactly-once", 1), ("exactly-once", 2)]
)
def test_ten_thousand_messages_one_labeled_record_each(
    guarantee: str,
    workers: int,
    kafka_bootstrap: str,
    make_topic: Callable[..., str],
    group_id: str,
    predictor: SentimentPredictor,
    canonical: list[InputMessage],
) -> None:
    input_topic, output_topic = make_topic("in", 6), make_topic("out", 6)
    dlq_topic = make_topic("dlq", 1)
    produce(kafka_bootstrap, input_topic, input_records(canonical))
    settings = classifier_settings(
        kafka_bootstrap,
        input_topic=input_topic,
        output_topic=output_topic,
        dlq_topic=dlq_topic,
        group_id=group_id,
        instance_id="main",
        model=model_spec(),
        processing_guarantee=guarantee,
        inference_workers=workers,
        batch_size=500,  # 20 batches or more, so several are with the model at once
    )
    with ThreadedClassifier(settings, predictor) as classifier:
        records = drain(
            kafka_bootstrap,
            output_topic,
            expected=COUNT,
            timeout_s=180,
            idle_s=1.0,
            isolation_level="read_committed",
        )
        # read while it runs: a stopped classifier drops the lag of the partitions it leaves
        lags = {
            partition: classifier.registry.get_sample_value(
                P + "consumer_lag", {"topic": input_topic, "partition": str(partition)}
            )
            for partition in range(6)
        }
    check_outputs(
        records, canonical, offline_labels(predictor, canonical), predictor.version, input_topic
    )
    assert drain(kafka_bootstrap, dlq_topic, idle_s=0.5) == []
    # each output partition holds its input partition's records in input order
    offsets: dict[tuple[int, int], list[int]] = {}
    for record in records:
        source = orjson.loads(record.value)["source"]
        offsets.setdefault((record.partition, source["partition"]), []).append(source["offset"])
    assert all(output == source for output, source in offsets)
    assert all(found == sorted(found) for found in offsets.values())

    # The counters equal what the topics hold.
    labels = Counter(orjson.loads(r.value)["sentiment"]["label"] for r in records)
    sample = classifier.sample
    assert sample(P + "messages_consumed_total") == COUNT
    assert sample(P + "records_published_total") == COUNT
    for label in ("bullish", "bearish"):
        assert sample(P + "predictions_total", {"label": label}) == labels[label]
        assert (
            sample(P + "symbol_predictions_total", {"symbol": "SPY", "label": label})
            == (labels[label])
        )
    agree = sum(
        orjson.loads(r.value)["sentiment"]["label"] == orjson.loads(r.value)["author_sentiment"]
        for r in records
    )
    tagged = {"model_version": predictor.version}
    assert sample(P + "author_tags_total", {"agreement": "agree", **tagged}) == agree
    assert sample(P + "author_tags_total", {"agreement": "disagree", **tagged}) == COUNT - agree
    # every reason is exposed, and none was used (the registry's own value: None when absent)
    exposed = classifier.registry.get_sample_value
    dead_letters = {
        r: exposed(P + "dead_letters_total", {"reason": r.value}) for r in DeadLetterReason
    }
    assert dead_letters == dict.fromkeys(DeadLetterReason, 0.0)
    assert sample(P + "batch_size_sum") == COUNT
    assert sample(P + "end_to_end_seconds_count") == COUNT
    assert sample(P + "model_info", {"version": predictor.version}) == 1
    # all partitions drained: every one has a lag, and it is 0
    assert lags == dict.fromkeys(range(6), 0.0)
