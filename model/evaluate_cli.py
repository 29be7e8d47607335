"""`stocksent evaluate --model DIR --data FILE [--json] [--plots]`: score an exported model."""

from __future__ import annotations

import csv
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from common.failures import ExitCode
from common.options import (
    boolean,
    from_arguments,
    optional_path,
    parse_flags,
    parser_for,
    positive_int,
    require,
    setting,
)

DEFAULT_BATCH_SIZE = 1024
REPORTED = ("n", "accuracy", "precision", "recall", "f1", "roc_auc", "log_loss")


@dataclass(frozen=True)
class EvaluateSettings:
    """Settings of `stocksent evaluate`."""

    env_prefix: ClassVar[str] = "evaluate_"

    model: Path | None = setting(
        optional_path,
        None,
        "exported model directory (default: the committed pretrained model)",
    )
    # required: never None once built (__post_init__)
    data: Path = setting(
        optional_path,
        None,
        "required: gzip-or-plain CSV with message and sentiment (bullish/bearish) columns",
    )
    json: bool = setting(boolean, False, "print one JSON object to stdout", is_flag=True)
    plots: bool = setting(
        boolean,
        False,
        "save learning curves, confusion matrix and calibration PNGs next to the model",
        is_flag=True,
    )
    batch_size: int = setting(positive_int, DEFAULT_BATCH_SIZE, "messages per model call")

    def __post_init__(self) -> None:
        require(self, "data")


def evaluate(
    model_dir: Path | None, data: Path, batch_size: int = DEFAULT_BATCH_SIZE
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
    """learning_curves.png (from training_log.csv, when there is one), confusion_matrix.png,
    calibration.png, in `model_dir`."""
    import matplotlib

    matplotlib.use("Agg")
    written = []
    log = model_dir / "training_log.csv"
    if log.is_file():
        written.append(_plot_learning_curves(log, model_dir / "learning_curves.png"))
    written.append(_plot_confusion_matrix(report, model_dir / "confusion_matrix.png"))
    written.append(_plot_calibration(labels, probabilities, model_dir / "calibration.png"))
    return written


def _save(fig: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def _plot_learning_curves(log: Path, path: Path) -> Path:
    """Loss and accuracy per epoch, train and val."""
    import matplotlib.pyplot as plt

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
    return _save(fig, path)


def _plot_confusion_matrix(report: dict[str, Any], path: Path) -> Path:
    """Counts by author's tag and prediction."""
    import matplotlib.pyplot as plt

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
    return _save(fig, path)


def _plot_calibration(labels: np.ndarray, probabilities: np.ndarray, path: Path) -> Path:
    """Share bullish against mean predicted probability, in ten bins of probability."""
    import matplotlib.pyplot as plt

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
    return _save(fig, path)


def print_report(report: dict[str, Any]) -> None:
    """The metrics, one `name: value` a line."""
    for key in REPORTED:
        print(f"{key:>10}: {report[key]}")
    print(
        f"{'confusion':>10}: {report['confusion_matrix']} (rows truth, cols predicted;"
        " bearish, bullish)"
    )
    print(f"{'model':>10}: {report['model']} ({report['model_version']})")
    for plot in report.get("plots", []):
        print(f"{'plot':>10}: {plot}")


def main(argv: list[str], prog: str = "stocksent evaluate") -> int:
    """Print the metrics (one JSON object with --json); 2 on unreadable input. Bad settings
    raise SettingsError (stocksent.cli: one line, exit 2)."""
    parser = parser_for(EvaluateSettings, prog, __doc__)
    settings = from_arguments(EvaluateSettings, parse_flags(parser, argv))
    try:
        report, labels, probabilities = evaluate(settings.model, settings.data, settings.batch_size)
    except (FileNotFoundError, ValueError) as error:
        print(f"{prog}: {error}", file=sys.stderr)
        return int(ExitCode.BAD_INPUT)
    if settings.plots:
        from model.predictor import PRETRAINED_DIR

        model_dir = settings.model or PRETRAINED_DIR
        report["plots"] = [str(p) for p in save_plots(model_dir, labels, probabilities, report)]
    if settings.json:
        sys.stdout.write(json.dumps(report) + "\n")
    else:
        print_report(report)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
