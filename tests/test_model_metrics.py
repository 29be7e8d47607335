"""Metrics (model/metrics.py) against scikit-learn, and the CSV reader."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from model.data import read_labeled_csv
from model.metrics import classification_report, roc_auc


def test_report_matches_sklearn() -> None:
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 500)
    probs = np.clip(labels * 0.3 + rng.random(500) * 0.7, 0, 1).round(2)  # ties included
    report = classification_report(labels, probs)
    predicted = (probs >= 0.5).astype(int)
    assert report["accuracy"] == pytest.approx(sklearn_metrics.accuracy_score(labels, predicted))
    assert report["precision"] == pytest.approx(sklearn_metrics.precision_score(labels, predicted))
    assert report["recall"] == pytest.approx(sklearn_metrics.recall_score(labels, predicted))
    assert report["f1"] == pytest.approx(sklearn_metrics.f1_score(labels, predicted), abs=1e-6)
    assert report["roc_auc"] == pytest.approx(sklearn_metrics.roc_auc_score(labels, probs))
    assert report["log_loss"] == pytest.approx(sklearn_metrics.log_loss(labels, probs), abs=1e-5)
    assert (
        report["confusion_matrix"] == sklearn_metrics.confusion_matrix(labels, predicted).tolist()
    )
    assert report["n"] == 500


def test_roc_auc_single_class_is_nan() -> None:
    assert np.isnan(roc_auc(np.ones(3), np.array([0.1, 0.2, 0.3])))


@pytest.mark.parametrize("compressed", [False, True])
def test_read_labeled_csv(tmp_path: Path, compressed: bool) -> None:
    body = 'id,message,sentiment,extra\n1,"$SPY up, up",Bullish,x\n2,"multi\nline",bearish,y\n'
    path = tmp_path / ("d.csv.gz" if compressed else "d.csv")
    if compressed:
        with gzip.open(path, "wt", encoding="utf-8") as handle:
            handle.write(body)
    else:
        path.write_text(body, encoding="utf-8")
    data = read_labeled_csv(path)
    assert data.texts == ["$SPY up, up", "multi\nline"]
    assert data.labels.tolist() == [1, 0]


def test_read_labeled_csv_names_bad_rows(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("message,sentiment\nhello,neutral\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad.csv: row 2"):
        read_labeled_csv(path)
    path.write_text("text,label\nhello,bullish\n", encoding="utf-8")
    with pytest.raises(ValueError, match="missing column"):
        read_labeled_csv(path)


def test_paired_comparison_counts_and_tests_the_disagreements() -> None:
    from model.metrics import paired_comparison

    a = np.array([True] * 60 + [False] * 40)
    b = np.array([True] * 50 + [False] * 10 + [True] * 5 + [False] * 35)
    out = paired_comparison(a, b)
    assert out["only_a_right"] == 10 and out["only_b_right"] == 5
    assert out["difference"] == 0.05
    # Exact two-sided binomial test of 5 vs 10 discordant pairs: p = 0.3018.
    assert out["mcnemar_p"] == 0.302
    low, high = out["ci95"]
    assert low < 0.05 < high
    same = paired_comparison(a, a)
    assert same["mcnemar_p"] == 1.0 and same["ci95"] == [0.0, 0.0]
    lopsided = paired_comparison(np.ones(100, bool), np.zeros(100, bool))
    assert lopsided["mcnemar_p"] < 1e-20 and lopsided["difference"] == 1.0


def test_paired_comparison_rejects_mismatched_arrays() -> None:
    from model.metrics import paired_comparison

    with pytest.raises(ValueError, match="equal"):
        paired_comparison(np.ones(3, bool), np.ones(4, bool))


def test_correct_applies_the_decision_rule_to_each_message() -> None:
    from model.metrics import BULLISH_THRESHOLD, correct

    labels = np.array([1, 1, 0, 0])
    probabilities = np.array([BULLISH_THRESHOLD, 0.2, 0.49, 0.9])
    assert correct(labels, probabilities).tolist() == [True, False, True, False]
