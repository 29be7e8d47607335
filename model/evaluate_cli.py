"""`stocksent evaluate --model DIR --data FILE [--json] [--plots]`: score an exported model."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np


def build_parser(prog: str) -> argparse.ArgumentParser:
    """Command-line flags."""
    p = argparse.ArgumentParser(prog=prog, description=__doc__)
    p.add_argument(
        "--model",
        type=Path,
        default=None,
        help="exported model directory (default: the committed pretrained model)",
    )
    p.add_argument(
        "--data",
        required=True,
        type=Path,
        help="gzip-or-plain CSV with message and sentiment (bullish/bearish) columns",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object to stdout")
    p.add_argument(
        "--plots",
        action="store_true",
        help="save learning curves, confusion matrix and calibration PNGs next to the model",
    )
    p.add_argument("--batch-size", type=int, default=1024)
    return p


def evaluate(
    model_dir: Path | None, data: Path, batch_size: int = 1024
) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    """Metrics of a model on a labeled CSV, with the labels and probabilities."""
    from model.data import read_labeled_csv
    from model.metrics import classification_report
    from model.predictor import Predictor

    predictor = Predictor.load(model_dir)
    messages = read_labeled_csv(data)
    probabilities = np.concatenate(
        [
            predictor.predict(messages.texts[i : i + batch_size])
            for i in range(0, len(messages), batch_size)
        ]
        or [np.zeros((0,), np.float32)]
    )
    report = classification_report(messages.labels, probabilities)
    report["model_version"] = predictor.version
    report["model"] = str(predictor.path)
    report["data"] = str(data)
    return report, messages.labels, probabilities


def save_plots(
    model_dir: Path, labels: np.ndarray, probabilities: np.ndarray, report: dict[str, Any]
) -> list[Path]:
    """learning_curves.png (from training_log.csv), confusion_matrix.png, calibration.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written: list[Path] = []
    log = model_dir / "training_log.csv"
    if log.is_file():
        with log.open(encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        epochs = [int(r["epoch"]) for r in rows]
        fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
        for key, ax in (("loss", ax_loss), ("accuracy", ax_acc)):
            ax.plot(epochs, [float(r[key]) for r in rows], marker="o", label="train")
            ax.plot(epochs, [float(r["val_" + key]) for r in rows], marker="o", label="val")
            ax.set_xlabel("epoch")
            ax.set_title(key)
            ax.legend()
        fig.tight_layout()
        written.append(model_dir / "learning_curves.png")
        fig.savefig(written[-1], dpi=80)
        plt.close(fig)

    cm = np.asarray(report["confusion_matrix"])
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.imshow(cm, cmap="Blues")
    for (i, j), v in np.ndenumerate(cm):
        ax.text(j, i, str(v), ha="center", va="center")
    ax.set_xticks([0, 1], ["bearish", "bullish"])
    ax.set_yticks([0, 1], ["bearish", "bullish"])
    ax.set_xlabel("predicted")
    ax.set_ylabel("author's tag")
    ax.set_title(f"accuracy {report['accuracy']:.4f}")
    fig.tight_layout()
    written.append(model_dir / "confusion_matrix.png")
    fig.savefig(written[-1], dpi=80)
    plt.close(fig)

    bins = np.linspace(0, 1, 11)
    which = np.clip(np.digitize(probabilities, bins) - 1, 0, 9)
    centers, observed = [], []
    for b in range(10):
        chosen = which == b
        if chosen.any():
            centers.append(float(probabilities[chosen].mean()))
            observed.append(float(labels[chosen].mean()))
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.plot([0, 1], [0, 1], "--", color="grey")
    ax.plot(centers, observed, marker="o")
    ax.set_xlabel("predicted probability of bullish")
    ax.set_ylabel("fraction bullish")
    ax.set_title("calibration")
    fig.tight_layout()
    written.append(model_dir / "calibration.png")
    fig.savefig(written[-1], dpi=80)
    plt.close(fig)
    return written


def main(argv: list[str], prog: str = "stocksent evaluate") -> int:
    """Print the metrics (one JSON object with --json); 2 on unreadable input."""
    args = build_parser(prog).parse_args(argv)
    try:
        report, labels, probabilities = evaluate(args.model, args.data, args.batch_size)
    except (FileNotFoundError, ValueError) as error:
        print(f"{prog}: {error}", file=sys.stderr)
        return 2
    if args.plots:
        from model.predictor import PRETRAINED_DIR

        model_dir = args.model or PRETRAINED_DIR
        report["plots"] = [str(p) for p in save_plots(model_dir, labels, probabilities, report)]
    if args.json:
        sys.stdout.write(json.dumps(report) + "\n")
    else:
        for key in ("n", "accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"):
            print(f"{key:>10}: {report[key]}")
        print(
            f"{'confusion':>10}: {report['confusion_matrix']} (rows truth, cols predicted;"
            " bearish, bullish)"
        )
        print(f"{'model':>10}: {report['model']} ({report['model_version']})")
        for plot in report.get("plots", []):
            print(f"{'plot':>10}: {plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
