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
