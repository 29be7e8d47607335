"""`stocksent train --data DIR --out DIR`: train, evaluate and export the LSTM."""

from __future__ import annotations

import argparse
import csv
import os
import shlex
import sys
from pathlib import Path
from typing import Any

from model.distill import TEACHERS
from model.machine import cpu_model, limit_tensorflow_threads
from model.metrics import BULLISH_THRESHOLD
from model.network import NetworkConfig
from model.training import TrainingConfig

DEFAULT_NETWORK = NetworkConfig()
DEFAULT_TRAINING = TrainingConfig()


def build_parser(prog: str) -> argparse.ArgumentParser:
    """Command-line flags; defaults are the shipped model's settings."""
    p = argparse.ArgumentParser(prog=prog, description=__doc__)
    p.add_argument(
        "--data",
        required=True,
        type=Path,
        help="directory with train/val/test .csv[.gz] (message, sentiment columns)",
    )
    p.add_argument("--out", required=True, type=Path, help="directory to export the model to")
    p.add_argument("--epochs", type=int, default=DEFAULT_TRAINING.epochs)
    p.add_argument("--seed", type=int, default=DEFAULT_TRAINING.seed)
    p.add_argument("--batch-size", type=int, default=DEFAULT_TRAINING.batch_size)
    p.add_argument("--learning-rate", type=float, default=DEFAULT_TRAINING.learning_rate)
    p.add_argument("--patience", type=int, default=DEFAULT_TRAINING.patience)
    p.add_argument("--min-count", type=int, default=DEFAULT_TRAINING.min_count)
    p.add_argument(
        "--word-dropout",
        type=float,
        default=DEFAULT_TRAINING.word_dropout,
        help="share of training tokens replaced by OOV, fresh each epoch",
    )
    p.add_argument(
        "--ema-momentum",
        type=float,
        default=DEFAULT_TRAINING.ema_momentum,
        help="> 0: keep an exponential moving average of the weights and use it",
    )
    p.add_argument(
        "--lr-monitor", choices=("val_loss", "val_accuracy"), default=DEFAULT_TRAINING.lr_monitor
    )
    p.add_argument(
        "--distill-from",
        choices=TEACHERS,
        default=DEFAULT_TRAINING.distill_from,
        help="teacher for soft targets, out-of-fold on train: TF-IDF (words, or words + "
        "chars) + LR, or NB-SVM (word and char n-grams); lstm+X also averages in LSTMs",
    )
    p.add_argument(
        "--soft-target-weight",
        type=float,
        default=DEFAULT_TRAINING.soft_target_weight,
        help="w: train on (1 - w) * tag + w * teacher probability",
    )
    p.add_argument("--distill-folds", type=int, default=DEFAULT_TRAINING.distill_folds)
    p.add_argument("--teacher-c", type=float, default=DEFAULT_TRAINING.teacher_c)
    p.add_argument(
        "--teacher-cache",
        type=Path,
        default=None,
        help="directory that keeps distillation teachers' probabilities between runs "
        "(keyed by data and settings; does not change the model)",
    )
    p.add_argument("--embedding-dim", type=int, default=DEFAULT_NETWORK.embedding_dim)
    p.add_argument(
        "--lstm-units",
        default=",".join(map(str, DEFAULT_NETWORK.lstm_units)),
        help="comma-separated sizes of the stacked LSTMs, e.g. 96,48",
    )
    p.add_argument("--embedding-dropout", type=float, default=DEFAULT_NETWORK.embedding_dropout)
    p.add_argument("--lstm-dropout", type=float, default=DEFAULT_NETWORK.lstm_dropout)
    p.add_argument("--l2", type=float, default=DEFAULT_NETWORK.l2)
    p.add_argument("--pooling", choices=("last", "last+max"), default=DEFAULT_NETWORK.pooling)
    p.add_argument(
        "--subword-buckets",
        type=int,
        default=DEFAULT_NETWORK.subword_buckets,
        help="> 0: add to each token's vector the mean of its hashed character n-gram "
        "vectors (3-5 characters) in this many buckets",
    )
    p.add_argument("--subword-dim", type=int, default=DEFAULT_NETWORK.subword_dim)
    p.add_argument(
        "--jit-compile",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="XLA-compile the numeric part of the serving graph",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=min(2, os.cpu_count() or 1),
        help="TensorFlow threads per pool (0: TensorFlow's default, one per core)",
    )
    p.add_argument(
        "--limit", type=int, default=0, help="use only the first N rows of each split (smoke tests)"
    )
    p.add_argument(
        "--no-baseline", action="store_true", help="skip the TF-IDF + logistic-regression baseline"
    )
    return p


def _write_log(path: Path, rows: list[dict[str, Any]]) -> None:
    keys = sorted({k for r in rows for k in r}, key=lambda k: (k != "epoch", k))
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)


def main(argv: list[str], prog: str = "stocksent train") -> int:
    """Train on DIR's train split, stop early on val, export to OUT, score val and test."""
    args = build_parser(prog).parse_args(argv)
    limit_tensorflow_threads(args.threads)

    from model import smoke
    from model.card import write_card
    from model.data import read_split, split_files
    from model.export import export_savedmodel, write_manifest
    from model.metrics import classification_report
    from model.predictor import Predictor
    from model.training import train

    def emit(line: str) -> None:
        print(line, flush=True)

    splits = {s: read_split(args.data, s) for s in ("train", "val", "test")}
    if args.limit:
        from dataclasses import replace

        splits = {
            s: replace(d, texts=d.texts[: args.limit], labels=d.labels[: args.limit])
            for s, d in splits.items()
        }
    for name, d in splits.items():
        emit(f"{name}: {len(d)} messages from {d.source}")
    network_config = NetworkConfig(
        embedding_dim=args.embedding_dim,
        lstm_units=tuple(int(u) for u in args.lstm_units.split(",")),
        embedding_dropout=args.embedding_dropout,
        lstm_dropout=args.lstm_dropout,
        l2=args.l2,
        pooling=args.pooling,
        subword_buckets=args.subword_buckets,
        subword_dim=args.subword_dim,
    )
    training_config = TrainingConfig(
        seed=args.seed,
        min_count=args.min_count,
        batch_size=args.batch_size,
        epochs=args.epochs,
        learning_rate=args.learning_rate,
        patience=args.patience,
        word_dropout=args.word_dropout,
        ema_momentum=args.ema_momentum,
        lr_monitor=args.lr_monitor,
        distill_from=args.distill_from,
        soft_target_weight=args.soft_target_weight,
        distill_folds=args.distill_folds,
        teacher_c=args.teacher_c,
    )
    trained = train(
        splits["train"],
        splits["val"],
        network_config,
        training_config,
        emit,
        teacher_cache=args.teacher_cache,
    )

    out: Path = args.out
    export_savedmodel(
        trained.network, trained.vocabulary, out, args.jit_compile, network_config.pooling
    )
    _write_log(out / "training_log.csv", trained.history)
    # Scores come from the exported artifact itself, not the in-memory Keras model.
    predictor = Predictor.open_savedmodel(out, {"model_version": "pending"})
    metrics = {}
    probabilities = {}
    for name in ("val", "test"):
        probabilities[name] = predictor.predict(splits[name].texts)
        metrics[name] = classification_report(splits[name].labels, probabilities[name])
        emit(
            f"{name}: accuracy {metrics[name]['accuracy']:.4f}  "
            f"roc_auc {metrics[name]['roc_auc']:.4f}  log_loss {metrics[name]['log_loss']:.4f}"
        )
    baseline = None
    if not args.no_baseline:
        from model.baseline import tfidf_baseline
        from model.metrics import correct, paired_comparison

        baseline, predictions = tfidf_baseline(splits["train"], splits["val"], splits["test"])
        labels = splits["test"].labels
        baseline["lstm_vs_baseline_on_test"] = paired_comparison(
            correct(labels, probabilities["test"]), predictions == labels
        )
        emit(
            f"baseline: val {baseline['val_accuracy']:.4f} test {baseline['test_accuracy']:.4f}; "
            f"LSTM minus baseline on test {baseline['lstm_vs_baseline_on_test']}"
        )
    command = "stocksent train " + " ".join(shlex.quote(a) for a in argv)
    manifest = write_manifest(
        out,
        {
            "vocabulary_size": len(trained.vocabulary),
            "network": network_config.to_dict(),
            "training": training_config.to_dict(),
            "jit_compile": args.jit_compile,
            "best_epoch": trained.best_epoch,
            "training_seconds": round(trained.seconds, 1),
            "history": trained.history,
            "metrics": metrics,
            "baseline": baseline,
            "threshold": BULLISH_THRESHOLD,
            "data": {
                "directory_name": Path(args.data).resolve().name,
                "limit": args.limit or None,
                # the prior the model learned: drift alerts compare live shares with it
                "bullish_share": round(float(splits["train"].labels.mean()), 6),
                "files": split_files(args.data, splits),
            },
            "machine": f"{cpu_model()}, {os.cpu_count()} cores",
            "rebuild_command": command,
            smoke.MANIFEST_FIELD: smoke.record(predictor),
        },
    )
    write_card(out, manifest)
    emit(f"exported model {manifest['model_version']} to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
