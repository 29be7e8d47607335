"""Distillation targets (model.distill): folds, blending, the out-of-fold teacher."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from model.distill import (
    LINEAR_TEACHERS,
    TEACHERS,
    blend_targets,
    describe,
    fold_assignment,
    nb_log_count_ratio,
    out_of_fold_linear,
    teacher_probabilities,
)


def test_fold_assignment_is_balanced_seeded_and_covers_every_row() -> None:
    folds = fold_assignment(103, 5, seed=7)
    assert folds.shape == (103,)
    counts = np.bincount(folds, minlength=5)
    assert counts.sum() == 103 and counts.max() - counts.min() <= 1
    assert np.array_equal(folds, fold_assignment(103, 5, seed=7))
    assert not np.array_equal(folds, fold_assignment(103, 5, seed=8))


@pytest.mark.parametrize(("n", "k"), [(10, 1), (3, 5)])
def test_fold_assignment_rejects_impossible_splits(n: int, k: int) -> None:
    with pytest.raises(ValueError):
        fold_assignment(n, k, seed=0)


def test_blend_targets_mixes_tag_and_teacher() -> None:
    labels = np.array([1, 0, 1, 0], dtype=np.int32)
    teacher = np.array([0.9, 0.2, 0.0, 1.0])
    out = blend_targets(labels, teacher, 0.25)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [0.975, 0.05, 0.75, 0.25], atol=1e-6)
    np.testing.assert_allclose(blend_targets(labels, teacher, 0.0), labels)
    np.testing.assert_allclose(blend_targets(labels, teacher, 1.0), teacher, atol=1e-7)


def test_blend_targets_keeps_the_tag_side_up_to_half_weight() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 500)
    teacher = rng.random(500)
    out = blend_targets(labels, teacher, 0.49)
    assert np.array_equal(out > 0.5, labels == 1)


@pytest.mark.parametrize("weight", [-0.1, 1.5])
def test_blend_targets_rejects_bad_weights(weight: float) -> None:
    with pytest.raises(ValueError):
        blend_targets(np.array([1]), np.array([0.5]), weight)


def test_blend_targets_rejects_bad_teacher() -> None:
    with pytest.raises(ValueError):
        blend_targets(np.array([1, 0]), np.array([0.5]), 0.5)
    with pytest.raises(ValueError):
        blend_targets(np.array([1]), np.array([1.2]), 0.5)


def toy_messages(n: int = 200, seed: int = 3) -> tuple[list[str], np.ndarray]:
    """n short messages whose label a linear n-gram model can learn (1 = bullish)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    words = {1: ["moon", "calls", "rip higher"], 0: ["puts", "crash", "dump it"]}
    texts = [f"$SPY {words[int(y)][i % 3]} today {i}" for i, y in enumerate(labels)]
    return texts, labels


@pytest.mark.parametrize("teacher", LINEAR_TEACHERS)
def test_out_of_fold_teacher_learns_and_is_deterministic(teacher: str) -> None:
    texts, labels = toy_messages()
    probs = out_of_fold_linear(teacher, texts, labels, folds=4, c=4.0, seed=1)
    assert probs.shape == (200,) and probs.dtype == np.float32
    assert np.all((probs >= 0) & (probs <= 1))
    assert np.mean((probs >= 0.5) == (labels == 1)) > 0.9
    again = out_of_fold_linear(teacher, texts, labels, folds=4, c=4.0, seed=1)
    np.testing.assert_array_equal(probs, again)


@pytest.mark.parametrize("teacher", LINEAR_TEACHERS)
def test_out_of_fold_means_a_row_never_trains_its_own_teacher(teacher: str) -> None:
    # Flipping one row's tag changes the teachers of the other folds, never the
    # score of that row itself: its teacher was fitted without it.
    texts, labels = toy_messages()
    before = out_of_fold_linear(teacher, texts, labels, folds=4, c=4.0, seed=1)
    flipped = labels.copy()
    flipped[0] = 1 - flipped[0]
    after = out_of_fold_linear(teacher, texts, flipped, folds=4, c=4.0, seed=1)
    assert after[0] == before[0]
    assert not np.array_equal(after, before)


def test_nb_log_count_ratio_signs_and_smooths() -> None:
    from scipy import sparse

    # Feature 0 only in bullish rows, feature 1 only in bearish rows, feature 2 in both.
    x = sparse.csr_matrix(np.array([[1, 0, 1], [1, 0, 1], [0, 1, 1], [0, 1, 1]]))
    labels = np.array([1, 1, 0, 0])
    r = nb_log_count_ratio(x, labels)
    assert r[0] > 0 > r[1] and r[2] == pytest.approx(0.0)
    # alpha 1: bullish counts [3, 1, 3] / 7, bearish [1, 3, 3] / 7
    assert r[0] == pytest.approx(np.log(3.0)) and r[1] == pytest.approx(-np.log(3.0))
    with pytest.raises(ValueError, match="both bullish and bearish"):
        nb_log_count_ratio(x, np.ones(4, dtype=int))


def test_every_linear_teacher_has_an_lstm_blend() -> None:
    assert set(TEACHERS) == {"none", *LINEAR_TEACHERS, *(f"lstm+{t}" for t in LINEAR_TEACHERS)}
    assert "nbsvm-oof" in LINEAR_TEACHERS


def test_teacher_probabilities_by_name() -> None:
    texts, labels = toy_messages(40)
    assert teacher_probabilities("none", texts, labels, 4, 1.0, 0) is None
    with pytest.raises(ValueError):
        teacher_probabilities("lstm", texts, labels, 4, 1.0, 0)


@pytest.mark.tensorflow  # model.training imports TensorFlow
def test_distillation_targets_pairs_tag_and_blend() -> None:
    from model.data import LabeledMessages
    from model.training import TrainingConfig, distillation_targets

    texts, labels = toy_messages(60)
    data = LabeledMessages(texts, labels.astype(np.int32), Path("toy"))
    assert distillation_targets(data, TrainingConfig(), lambda _: None) is None
    config = TrainingConfig(distill_from="tfidf-oof", soft_target_weight=0.4, distill_folds=3)
    lines: list[str] = []
    pairs = distillation_targets(data, config, lines.append)
    assert pairs is not None and pairs.shape == (60, 2) and pairs.dtype == np.float32
    np.testing.assert_array_equal(pairs[:, 0], labels)
    assert np.array_equal(pairs[:, 1] > 0.5, labels == 1)
    assert lines and "out-of-fold accuracy" in lines[0]


def test_describe_names_the_teacher_only_when_distilling() -> None:
    assert describe({"distill_from": "none", "soft_target_weight": 0.5}) == ""
    assert describe({"distill_from": "tfidf-oof", "soft_target_weight": 0.0}) == ""
    text = describe(
        {
            "distill_from": "tfidf-oof",
            "soft_target_weight": 0.5,
            "teacher_c": 4.0,
            "distill_folds": 5,
        }
    )
    assert "out-of-fold" in text and "0.5" in text and "5 folds" in text
    assert "TF-IDF (word 1-2 grams)" in text
    nbsvm = describe({"distill_from": "nbsvm-oof", "soft_target_weight": 0.5, "teacher_c": 0.1})
    assert "NB-SVM" in nbsvm and "C 0.1" in nbsvm


@pytest.mark.tensorflow  # model.training imports TensorFlow
def test_soft_target_loss_and_tag_accuracy_read_their_columns() -> None:
    from model.training import soft_target_loss, tag_accuracy

    y_true = np.array([[1.0, 0.7], [0.0, 0.2]], dtype=np.float32)
    y_pred = np.array([[0.6], [0.4]], dtype=np.float32)
    acc = np.asarray(tag_accuracy(y_true, y_pred))
    np.testing.assert_allclose(acc.ravel(), [1.0, 1.0])
    loss = np.asarray(soft_target_loss(y_true, y_pred)).ravel()
    expected = -(
        np.array([0.7, 0.2]) * np.log([0.6, 0.4]) + np.array([0.3, 0.8]) * np.log([0.4, 0.6])
    )
    np.testing.assert_allclose(loss, expected, rtol=1e-4)


def test_teacher_parts_name_the_components() -> None:
    from model.distill import TEACHERS, teacher_parts

    assert teacher_parts("none") == (False, None)
    assert teacher_parts("tfidf-oof") == (False, "tfidf-oof")
    assert teacher_parts("lstm+tfidf-char-oof") == (True, "tfidf-char-oof")
    for name in TEACHERS:
        lstm, tfidf = teacher_parts(name)
        assert lstm == name.startswith("lstm+")
        assert (tfidf is None) == (name == "none")
    with pytest.raises(ValueError):
        teacher_parts("lstm")


def test_describe_names_lstm_teachers() -> None:
    text = describe(
        {
            "distill_from": "lstm+tfidf-char-oof",
            "soft_target_weight": 0.5,
            "teacher_c": 2.0,
            "distill_folds": 5,
        }
    )
    assert "LSTMs" in text and "character 2-5 grams" in text


@pytest.mark.tensorflow  # model.training imports TensorFlow
def test_lstm_teachers_need_val_and_network() -> None:
    from model.data import LabeledMessages
    from model.training import TrainingConfig, distillation_targets

    texts, labels = toy_messages(60)
    data = LabeledMessages(texts, labels.astype(np.int32), Path("toy"))
    config = TrainingConfig(distill_from="lstm+tfidf-oof", soft_target_weight=0.5, distill_folds=3)
    with pytest.raises(ValueError):
        distillation_targets(data, config, lambda _: None)


@pytest.mark.slow
@pytest.mark.tensorflow
def test_train_cli_distills_and_records_it(tmp_path: Path) -> None:
    import json

    from model import train_cli
    from tests.test_model_cli import write_split

    data = tmp_path / "data"
    data.mkdir()
    for seed, split in enumerate(("train", "val", "test")):
        write_split(data / f"{split}.csv.gz", 200, seed)
    out = tmp_path / "model"
    argv = [
        "--data", str(data), "--out", str(out), "--epochs", "1", "--batch-size", "64",
        "--embedding-dim", "8", "--lstm-units", "8,4", "--no-baseline",
        "--distill-from", "lstm+tfidf-oof", "--soft-target-weight", "0.5", "--distill-folds", "2",
        "--threads", "0",  # TensorFlow's pools as they are (see tests/test_model_cli.py)
    ]  # fmt: skip
    assert train_cli.main(argv, prog="stocksent train") == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["training"]["distill_from"] == "lstm+tfidf-oof"
    assert manifest["training"]["soft_target_weight"] == 0.5
    assert "--distill-from lstm+tfidf-oof" in manifest["rebuild_command"]
    assert "**Distillation**" in (out / "MODEL_CARD.md").read_text()


@pytest.mark.tensorflow  # model.training imports TensorFlow
def test_teacher_cache_key_ignores_only_the_student_weight() -> None:
    from model.data import LabeledMessages
    from model.network import NetworkConfig
    from model.training import TrainingConfig, teacher_cache_key

    texts, labels = toy_messages(30)
    data = LabeledMessages(texts, labels.astype(np.int32), Path("toy"))
    net = NetworkConfig()
    base = TrainingConfig(distill_from="tfidf-oof", soft_target_weight=0.5)
    key = teacher_cache_key(data, data, net, base)
    same = TrainingConfig(distill_from="tfidf-oof", soft_target_weight=0.7)
    assert teacher_cache_key(data, data, net, same) == key
    for other in (
        TrainingConfig(distill_from="tfidf-oof", soft_target_weight=0.5, seed=1),
        TrainingConfig(distill_from="tfidf-char-oof", soft_target_weight=0.5),
    ):
        assert teacher_cache_key(data, data, net, other) != key
    assert teacher_cache_key(data, data, NetworkConfig(lstm_units=(8, 4)), base) == key
    lstm = TrainingConfig(distill_from="lstm+tfidf-oof", soft_target_weight=0.5)
    lstm_key = teacher_cache_key(data, data, net, lstm)
    assert teacher_cache_key(data, data, NetworkConfig(lstm_units=(8, 4)), lstm) != lstm_key
    slower = TrainingConfig(distill_from="lstm+tfidf-oof", soft_target_weight=0.5, epochs=3)
    assert teacher_cache_key(data, data, net, slower) != lstm_key
    flipped = LabeledMessages(texts, (1 - labels).astype(np.int32), Path("toy"))
    assert teacher_cache_key(flipped, data, net, base) != key


@pytest.mark.tensorflow  # model.training imports TensorFlow
def test_teacher_cache_is_reused(tmp_path: Path) -> None:
    from model.data import LabeledMessages
    from model.training import TrainingConfig, distillation_targets

    texts, labels = toy_messages(60)
    data = LabeledMessages(texts, labels.astype(np.int32), Path("toy"))
    config = TrainingConfig(distill_from="tfidf-oof", soft_target_weight=0.5, distill_folds=3)
    lines: list[str] = []
    first = distillation_targets(data, config, lines.append, teacher_cache=tmp_path)
    assert len(list(tmp_path.glob("teacher-*.npy"))) == 1
    lines.clear()
    again = distillation_targets(data, config, lines.append, teacher_cache=tmp_path)
    assert any("from" in line for line in lines)
    assert first is not None and again is not None
    np.testing.assert_array_equal(first, again)
