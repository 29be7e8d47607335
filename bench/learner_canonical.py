"""One learning round on the canonical split, as if its newest train messages had streamed.

The committed model is the frozen one (the store's first version). The newest `--window`
messages of the train split (ids are row numbers, growing with time) become the learner's
window with their authors' tags, ordered by id; `model.learning.learning_round` then does
exactly what `stocksent learn --once --base-data DIR` does after reading them from Kafka.
Prints one JSON object: frozen vs candidate on the held-out slice and on the base test
split, the decision and the training seconds.

    python -m bench.learner_canonical [--window 25000] [--threads 2] [--store DIR]

Note: the committed model was trained on the whole train split, so the held-out slice here
is data the frozen model has already seen; the base test split is unseen by both.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import sys
import tempfile
import time
from pathlib import Path

from model.data import CANONICAL_SPLIT_DIR, LABELS, split_path
from model.machine import cpu_model, limit_tensorflow_threads


def newest_train_messages(data_dir: Path, count: int) -> list[tuple[int, str, int]]:
    """(id, text, label) of the `count` train messages with the highest ids, oldest first."""
    with gzip.open(split_path(data_dir, "train"), "rt", encoding="utf-8", newline="") as handle:
        rows = [
            (int(r["id"]), r["message"] or "", LABELS.index(r["sentiment"].strip().lower()))
            for r in csv.DictReader(handle)
        ]
    rows.sort()
    return rows[-count:]


def main(argv: list[str] | None = None) -> int:
    """Run the round and print its figures."""
    parser = argparse.ArgumentParser(prog="python -m bench.learner_canonical", description=__doc__)
    parser.add_argument("--data", type=Path, default=CANONICAL_SPLIT_DIR)
    parser.add_argument("--window", type=int, default=25_000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--learning-rate", type=float, default=None, help="default: the learner's")
    parser.add_argument("--store", type=Path, default=None, help="default: a temporary folder")
    args = parser.parse_args(argv)
    limit_tensorflow_threads(args.threads)

    from dataclasses import replace

    from model.learning import RoundConfig, learning_round
    from model.store import ModelStore
    from model.tagged_window import TaggedWindow, tag_messages

    rows = newest_train_messages(args.data, args.window)
    # No created_at in the data set: the id (row number) is the time.
    window = TaggedWindow(limit=len(rows))
    window.add_many(tag_messages([(i, text, None, label, float(i)) for i, text, label in rows]))
    root = args.store or Path(tempfile.mkdtemp(prefix="learner-canonical."))
    store = ModelStore(root) if ModelStore(root).exists() else ModelStore.init(root)
    config = RoundConfig()
    finetune = replace(config.finetune, epochs=args.epochs)
    if args.learning_rate is not None:
        finetune = replace(finetune, learning_rate=args.learning_rate)
    config = replace(config, finetune=finetune)
    started = time.perf_counter()
    result = learning_round(store, window.messages(), args.data, config, print)
    line = result.history_line or {}
    metrics = (line.get("metrics") or {}) if line else {}

    def pick(part: str) -> dict[str, dict[str, float]] | None:
        figures = metrics.get(part)
        if not figures:
            return None
        keys = ("n", "accuracy", "balanced_accuracy", "roc_auc", "log_loss")
        return {
            "frozen": {k: figures["current"][k] for k in keys},
            "candidate": {k: figures["candidate"][k] for k in keys},
            "paired": figures["paired"],
        }

    print(
        json.dumps(
            {
                "window": {
                    "rows": len(rows),
                    "kept": len(window),
                    "ids": [rows[0][0], rows[-1][0]],
                },
                "outcome": result.outcome,
                "reason": result.reason,
                "parent": result.parent,
                "candidate": result.candidate,
                "counts": result.counts,
                "holdout": pick("holdout"),
                "base_test": pick("base_test"),
                "training_seconds": result.training_seconds,
                "round_seconds": round(time.perf_counter() - started, 1),
                "threads": args.threads,
                "machine": cpu_model(),
                "store": str(root),
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
