"""`python -m model.teacher_grid`: each linear teacher's C chosen on val."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from model.teacher_grid import grid, main
from tests.test_model_distill import toy_messages


def _write_split(path: Path, n: int, seed: int) -> None:
    texts, labels = toy_messages(n, seed)
    with path.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(["id", "message", "sentiment"])
        for i, (text, label) in enumerate(zip(texts, labels, strict=True)):
            out.writerow([i, text, "bullish" if label == 1 else "bearish"])


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    for seed, (split, n) in enumerate([("train", 240), ("val", 60), ("test", 60)]):
        _write_split(tmp_path / f"{split}.csv", n, seed)
    return tmp_path


def test_grid_scores_every_teacher_and_c_and_picks_on_val(data_dir: Path) -> None:
    lines: list[str] = []
    result = grid(data_dir, ["tfidf-oof", "nbsvm-oof"], [0.1, 1.0], lines.append)
    assert set(result) == {"tfidf-oof", "nbsvm-oof"}
    for teacher in result.values():
        assert [r["C"] for r in teacher["runs"]] == [0.1, 1.0]
        assert all(r["val_accuracy"] > 0.9 and r["test_accuracy"] > 0.9 for r in teacher["runs"])
        best = max(r["val_accuracy"] for r in teacher["runs"])
        chosen = next(r for r in teacher["runs"] if r["C"] == teacher["best_C"])
        assert chosen["val_accuracy"] == best
    assert len(lines) == 6 and lines[-1].startswith("nbsvm-oof: best C on val")


def test_main_prints_json_only_on_stdout(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--data", str(data_dir), "--teachers", "nbsvm-oof", "--c", "1", "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["nbsvm-oof"]["best_C"] == 1.0
    assert "nbsvm-oof C 1: val" in captured.err


def test_main_rejects_a_non_positive_c(data_dir: Path) -> None:
    with pytest.raises(SystemExit):
        main(["--data", str(data_dir), "--c", "0"])
