"""`stocksent train` and `stocksent evaluate` end to end (small data)."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import pytest

from model import evaluate_cli


def write_split(path: Path, n: int, seed: int) -> None:
    from tests.test_model_export import synthetic_messages

    texts, labels = synthetic_messages(n, seed)
    with gzip.open(path, "wt", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "message", "sentiment"])
        for i, (text, label) in enumerate(zip(texts, labels, strict=True)):
            writer.writerow([i, text, "bullish" if label else "bearish"])


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1-epoch model with subwords trained by the CLI on 300 synthetic rows, with the
    baseline measured beside it."""
    from model import train_cli

    data = tmp_path_factory.mktemp("data")
    for seed, split in enumerate(("train", "val", "test")):
        write_split(data / f"{split}.csv.gz", 300, seed)
    out = tmp_path_factory.mktemp("out") / "model"
    argv = [
        "--data",
        str(data),
        "--out",
        str(out),
        "--epochs",
        "1",
        "--batch-size",
        "64",
        "--embedding-dim",
        "8",
        "--lstm-units",
        "8,4",
        "--subword-buckets",
        "16",
        "--subword-dim",
        "4",
        # TensorFlow's default pools: in one pytest process with other TensorFlow tests the
        # pools are already running, and TensorFlow refuses to resize them after that
        "--threads",
        "0",
    ]
    assert train_cli.main(argv, prog="stocksent train") == 0
    return out


@pytest.mark.slow
@pytest.mark.tensorflow
def test_train_exports_a_complete_model(trained: Path) -> None:
    manifest = json.loads((trained / "manifest.json").read_text())
    for name in ("saved_model.pb", "vocabulary.txt", "MODEL_CARD.md", "training_log.csv"):
        assert (trained / name).is_file(), name
    assert set(manifest["metrics"]) == {"val", "test"}
    assert manifest["rebuild_command"].startswith("stocksent train --data ")
    card = (trained / "MODEL_CARD.md").read_text()
    assert manifest["model_version"] in card
    assert manifest["network"]["subword_buckets"] == 16
    assert "16 hashed buckets" in card
    paired = manifest["baseline"]["lstm_vs_baseline_on_test"]
    assert set(paired) == {"difference", "ci95", "only_a_right", "only_b_right", "mcnemar_p"}
    assert paired["difference"] == pytest.approx(
        manifest["metrics"]["test"]["accuracy"] - manifest["baseline"]["test_accuracy"], abs=2e-4
    )
    assert "McNemar" in card


@pytest.mark.slow
@pytest.mark.tensorflow
def test_evaluate_json_and_plots(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "eval.csv"
    with data.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["message", "sentiment", "ignored"])
        writer.writerows([["$SPY moon 🚀", "bullish", 1], ["crash puts", "bearish", 2]])
    code = evaluate_cli.main(
        ["--model", str(trained), "--data", str(data), "--json", "--plots"], "stocksent evaluate"
    )
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    for key in (
        "accuracy",
        "precision",
        "recall",
        "f1",
        "roc_auc",
        "log_loss",
        "confusion_matrix",
        "n",
    ):
        assert key in report
    assert report["n"] == 2
    for plot in ("learning_curves.png", "confusion_matrix.png", "calibration.png"):
        assert (trained / plot).is_file()


def test_evaluate_reports_a_bad_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("text\nhello\n", encoding="utf-8")
    code = evaluate_cli.main(["--model", str(tmp_path), "--data", str(bad)], "stocksent evaluate")
    assert code == 2
    assert str(tmp_path) in capsys.readouterr().err
