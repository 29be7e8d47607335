"""`python -m model.teacher_grid --data DIR`: choose a linear teacher's C on val.

Each linear distillation teacher (`model.distill.LINEAR_TEACHERS`) is fitted on the whole
train split for each C of a grid and scored on val (and, for the record, test). The C with
the best val accuracy is the one to pass to `stocksent train --teacher-c`; test never
chooses. Prints one line per fit and, with `--json`, one JSON object at the end.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from model.data import read_split
from model.distill import LINEAR_TEACHERS, fit_predict_linear
from model.metrics import correct

DEFAULT_GRID = (0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 4.0)


def grid(data_dir: Path, teachers: list[str], cs: list[float], emit: Any = print) -> dict[str, Any]:
    """{teacher: {"runs": [{"C", "val_accuracy", "test_accuracy"}...], "best_C"}}."""
    train, val, test = (read_split(data_dir, s) for s in ("train", "val", "test"))
    texts = val.texts + test.texts
    out: dict[str, Any] = {}
    for teacher in teachers:
        runs = []
        for c in sorted(cs):  # ascending, so that a tie on val keeps the smaller C
            probs = fit_predict_linear(teacher, train.texts, train.labels, texts, c)
            val_acc = float(np.mean(correct(val.labels, probs[: len(val)])))
            test_acc = float(np.mean(correct(test.labels, probs[len(val) :])))
            runs.append(
                {"C": c, "val_accuracy": round(val_acc, 4), "test_accuracy": round(test_acc, 4)}
            )
            emit(f"{teacher} C {c:g}: val {val_acc:.4f} test {test_acc:.4f}")
        best = max(runs, key=lambda r: r["val_accuracy"])  # first of equals
        emit(f"{teacher}: best C on val {best['C']:g}")
        out[teacher] = {"runs": runs, "best_C": best["C"]}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m model.teacher_grid", description=__doc__)
    p.add_argument("--data", type=Path, required=True, help="DIR with train/val/test CSVs")
    p.add_argument("--teachers", nargs="+", choices=LINEAR_TEACHERS, default=list(LINEAR_TEACHERS))
    p.add_argument("--c", nargs="+", type=float, default=list(DEFAULT_GRID), help="C grid")
    p.add_argument("--json", action="store_true", help="also print one JSON object")
    args = p.parse_args(argv)
    if any(c <= 0 for c in args.c):
        p.error("--c values must be positive")
    lines = sys.stderr if args.json else sys.stdout  # stdout holds only the JSON with --json
    result = grid(args.data, args.teachers, args.c, lambda line: print(line, file=lines))
    if args.json:
        sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
