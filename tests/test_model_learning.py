"""Fine-tuning from a stored version and one learning round (model.finetune, model.learning).

Loads TensorFlow: a tiny model (one LSTM of 8 units) keeps it to seconds."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from model.finetune import FineTuneConfig, keras_probabilities, rebuild_network
from model.learning import RoundConfig, learning_round, split_holdout
from model.predictor import PRETRAINED_DIR, Predictor
from model.smoke import SAMPLE_TEXTS
from model.store import ModelStore, bullish_prior
from model.tagged_window import TaggedMessage, tag_messages
from tests.learner_support import export_tiny_parent, stream_messages, write_base_split

pytestmark = pytest.mark.tensorflow

TEXTS = [
    *SAMPLE_TEXTS,
    "bearish puts everywhere",
    "zzqx unseenword $ZZZZ moon",  # out-of-vocabulary words and ticker: subword fallbacks
    "soooo bullllish",
]
ROUND = RoundConfig(
    holdout_fraction=0.2,
    min_per_label=20,
    finetune=FineTuneConfig(epochs=6, learning_rate=0.02, batch_size=32, patience=2),
)


@pytest.fixture(scope="module")
def tiny_parent(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_tiny_parent(tmp_path_factory.mktemp("tiny") / "parent")


def tagged(texts: list[str], labels: list[int], first_id: int = 1) -> list[TaggedMessage]:
    rows = [
        (first_id + i, t, None, y, float(first_id + i))
        for i, (t, y) in enumerate(zip(texts, labels, strict=True))
    ]
    return tag_messages(rows)


def test_the_rebuilt_committed_model_gives_its_savedmodel_probabilities() -> None:
    """The committed model has subwords: the exported word vectors include them."""
    rebuilt = rebuild_network(PRETRAINED_DIR)
    expected = Predictor.load(PRETRAINED_DIR, warmup=False).predict(TEXTS)
    np.testing.assert_allclose(keras_probabilities(rebuilt, TEXTS), expected, atol=1e-5)


def test_the_rebuilt_tiny_model_gives_its_savedmodel_probabilities(tiny_parent: Path) -> None:
    texts, _ = stream_messages(64, seed=5)
    rebuilt = rebuild_network(tiny_parent)
    expected = Predictor.load(tiny_parent, warmup=False).predict(texts)
    np.testing.assert_allclose(keras_probabilities(rebuilt, texts), expected, atol=1e-5)


def test_the_held_out_slice_is_the_newest_by_time() -> None:
    messages = [TaggedMessage(i, float(100 - i), f"t{i}", i % 2, f"k{i}") for i in range(10)]
    train, held = split_holdout(messages, 0.2)
    assert [m.id for m in held] == [1, 0]  # the two latest times
    assert {m.id for m in train} == set(range(2, 10))


def test_too_few_tagged_messages_make_no_candidate(tmp_path: Path, tiny_parent: Path) -> None:
    store = ModelStore.init(tmp_path / "store", tiny_parent)
    texts, labels = stream_messages(40, seed=1)
    result = learning_round(store, tagged(texts, labels), None, ROUND, emit=lambda _: None)
    assert result.outcome == "skipped_too_few_tagged"
    assert "at least 20" in result.reason
    assert [h["action"] for h in store.history()] == ["init"]
    assert store.versions() == [store.current()]


def test_a_round_promotes_a_candidate_that_learned_the_drift(
    tmp_path: Path, tiny_parent: Path
) -> None:
    store = ModelStore.init(tmp_path / "store", tiny_parent)
    parent = store.current()
    base = write_base_split(tmp_path / "base")
    texts, labels = stream_messages(700, seed=21)
    result = learning_round(store, tagged(texts, labels), base, ROUND, emit=print)
    assert result.outcome == "promoted", result.reason
    assert store.current() == result.candidate != parent
    line = store.history()[-1]
    assert line["action"] == "promote" and line["by"] == "learner"
    assert line["parent"] == parent and line["candidate"] == result.candidate
    data = line["data"]
    assert data["holdout"]["messages"] == result.counts["holdout"]
    # one per normalised text: the few repeated synthetic texts count once
    assert data["training_part"]["messages"] + data["holdout"]["messages"] == len(set(texts))
    assert data["training_part"]["ids"][1] < data["holdout"]["ids"][0]  # held out = newest
    assert len(data["holdout"]["sha256"]) == 64 and data["rehearsal"]["messages"] > 0
    held = line["metrics"]["holdout"]
    assert held["candidate"]["accuracy"] > held["current"]["accuracy"]
    assert held["paired"]["mcnemar_p"] < 0.05
    assert line["metrics"]["base_test"]["candidate"]["n"] == 300
    manifest = json.loads((store.version_dir(result.candidate) / "manifest.json").read_text())
    assert manifest["learner"]["parent"] == parent
    # the candidate's prior is what it trained on, the window's part and the rehearsal
    prior = bullish_prior(manifest)
    assert prior is not None and prior == data["bullish_share"]
    assert 0.0 < prior < 1.0
    # the classifier's hot reload refuses a version that fails its smoke check: this passes
    from model import smoke

    smoke.check(Predictor.load(store.version_dir(result.candidate), warmup=False), manifest)
    card = (store.version_dir(result.candidate) / "MODEL_CARD.md").read_text()
    assert "learner version" in card and parent in card


def test_a_candidate_that_learned_nothing_is_rejected(tmp_path: Path, tiny_parent: Path) -> None:
    store = ModelStore.init(tmp_path / "store", tiny_parent)
    parent = store.current()
    texts, labels = stream_messages(700, seed=21)
    still = replace(ROUND, finetune=replace(ROUND.finetune, learning_rate=1e-9, epochs=1))
    result = learning_round(store, tagged(texts, labels), None, still, emit=lambda _: None)
    assert result.outcome == "rejected"
    assert store.current() == parent
    line = store.history()[-1]
    assert line["action"] == "reject" and line["candidate"] == result.candidate
    assert "not right more often" in line["reason"]
