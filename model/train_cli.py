"""`stocksent train --data DIR --out DIR`: train, evaluate and export the LSTM."""

from __future__ import annotations

import argparse
import csv
import os
import shlex
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import numpy as np

from common.options import (
    SettingsError,
    boolean,
    float_between,
    from_arguments,
    int_between,
    non_negative_float,
    non_negative_int,
    optional_path,
    options_of,
    parse_flags,
    parser_for,
    positive_float,
    positive_int,
    require,
    setting,
    text,
)
from model.data import SPLITS, split_path
from model.distill import TEACHERS
from model.hyperparameters import LR_MONITORS, POOLINGS, NetworkConfig, TrainingConfig
from model.machine import limit_tensorflow_threads, machine_description
from model.metrics import BULLISH_THRESHOLD

if TYPE_CHECKING:
    from model.data import LabeledMessages
    from model.predictor import Predictor
    from model.training import TrainedModel

DEFAULT_NETWORK = NetworkConfig()
DEFAULT_TRAINING = TrainingConfig()
DEFAULT_THREADS = 2  # per pool, when --threads is unset (1 on a one-core machine)
SCORED_SPLITS = ("val", "test")

Emit = Callable[[str], None]


def layer_sizes(value: str) -> tuple[int, ...]:
    """Comma-separated sizes, each a whole number >= 1 (`96,48`)."""
    try:
        sizes = tuple(positive_int(part) for part in value.split(","))
    except ValueError:
        raise ValueError("must be comma-separated whole numbers >= 1, e.g. 96,48") from None
    return sizes


def thread_count(value: str) -> int | None:
    """A whole number >= 0, or nothing (DEFAULT_THREADS)."""
    return non_negative_int(value) if value.strip() else None


share = float_between(0, 1, high_open=True)  # a dropout rate or a momentum: 0 <= x < 1


@dataclass(frozen=True)
class TrainSettings:
    """Settings of `stocksent train`; defaults are NetworkConfig's and TrainingConfig's."""

    env_prefix: ClassVar[str] = "train_"

    # required: never None once built (__post_init__)
    data: Path = setting(
        optional_path,
        None,
        "required: directory with train/val/test .csv[.gz] (message, sentiment columns)",
    )
    out: Path = setting(optional_path, None, "required: directory to export the model to")
    epochs: int = setting(
        positive_int,
        DEFAULT_TRAINING.epochs,
        "most epochs (early stopping on val accuracy may stop sooner)",
    )
    seed: int = setting(
        non_negative_int,
        DEFAULT_TRAINING.seed,
        "seed of Python, NumPy, TensorFlow and Keras (ops deterministic too)",
    )
    batch_size: int = setting(
        positive_int,
        DEFAULT_TRAINING.batch_size,
        "messages per training batch",
    )
    learning_rate: float = setting(
        positive_float,
        DEFAULT_TRAINING.learning_rate,
        "initial learning rate (Adam), reduced when --lr-monitor stops improving",
    )
    patience: int = setting(
        non_negative_int,
        DEFAULT_TRAINING.patience,
        "epochs without a better val accuracy before stopping (best weights restored)",
    )
    min_count: int = setting(
        non_negative_int,
        DEFAULT_TRAINING.min_count,
        "tokens seen fewer times in the train split become out-of-vocabulary",
    )
    word_dropout: float = setting(
        share,
        DEFAULT_TRAINING.word_dropout,
        "share of training tokens replaced by OOV, fresh each epoch",
    )
    ema_momentum: float = setting(
        share,
        DEFAULT_TRAINING.ema_momentum,
        "> 0: keep an exponential moving average of the weights and use it",
    )
    lr_monitor: str = setting(
        text,
        DEFAULT_TRAINING.lr_monitor,
        "what the learning-rate reduction on plateau watches",
        choices=LR_MONITORS,
    )
    distill_from: str = setting(
        text,
        DEFAULT_TRAINING.distill_from,
        "teacher for soft targets, out-of-fold on train: TF-IDF (words, or words + chars) + LR, "
        "or NB-SVM (word and char n-grams); lstm+X also averages in LSTMs",
        choices=TEACHERS,
    )
    soft_target_weight: float = setting(
        float_between(0, 1),
        DEFAULT_TRAINING.soft_target_weight,
        "weight w of the teacher: train on (1 - w) * tag + w * teacher probability",
    )
    distill_folds: int = setting(
        int_between(2),
        DEFAULT_TRAINING.distill_folds,
        "folds of the teacher's out-of-fold probabilities",
    )
    teacher_c: float = setting(
        positive_float,
        DEFAULT_TRAINING.teacher_c,
        "C (inverse regularisation) of the teacher's logistic regression",
    )
    teacher_cache: Path | None = setting(
        optional_path,
        None,
        "directory that keeps distillation teachers' probabilities between runs "
        "(keyed by data and settings; does not change the model)",
    )
    embedding_dim: int = setting(
        positive_int,
        DEFAULT_NETWORK.embedding_dim,
        "size of a word vector",
    )
    lstm_units: tuple[int, ...] = setting(
        layer_sizes,
        DEFAULT_NETWORK.lstm_units,
        "comma-separated sizes of the stacked LSTMs, e.g. 96,48",
    )
    embedding_dropout: float = setting(
        share,
        DEFAULT_NETWORK.embedding_dropout,
        "share of whole word vectors dropped in training",
    )
    lstm_dropout: float = setting(
        share,
        DEFAULT_NETWORK.lstm_dropout,
        "dropout on each LSTM's inputs and before the output",
    )
    l2: float = setting(
        non_negative_float,
        DEFAULT_NETWORK.l2,
        "L2 penalty on the recurrent and output kernels",
    )
    pooling: str = setting(
        text,
        DEFAULT_NETWORK.pooling,
        "what the output sees: the top LSTM's last step, or also the max over its steps",
        choices=POOLINGS,
    )
    subword_buckets: int = setting(
        non_negative_int,
        DEFAULT_NETWORK.subword_buckets,
        "> 0: add to each token's vector the mean of its hashed character n-gram "
        "vectors (3-5 characters) in this many buckets",
    )
    subword_dim: int = setting(
        positive_int,
        DEFAULT_NETWORK.subword_dim,
        "size of a character n-gram vector (with --subword-buckets)",
    )
    jit_compile: bool = setting(
        boolean,
        False,
        "XLA-compile the numeric part of the serving graph (--no-jit-compile: do not)",
        is_flag=True,
    )
    threads: int | None = setting(
        thread_count,
        None,
        f"TensorFlow threads per pool (0: TensorFlow's default, one per core; unset: "
        f"{DEFAULT_THREADS}, or 1 on a one-core machine)",
    )
    limit: int = setting(
        non_negative_int,
        0,
        "use only the first N rows of each split (smoke tests; 0: all)",
    )
    no_baseline: bool = setting(
        boolean,
        False,
        "skip the TF-IDF + logistic-regression baseline",
        is_flag=True,
    )

    def __post_init__(self) -> None:
        require(self, "data", "out")
        for split in SPLITS:
            try:
                split_path(self.data, split)
            except FileNotFoundError as err:
                raise SettingsError(f"--data: {err}") from None
        if self.jit_compile and self.subword_buckets:
            raise SettingsError(
                "--jit-compile: cannot be used with --subword-buckets (string ops cannot compile)"
            )

    @property
    def tensorflow_threads(self) -> int:
        """Threads per TensorFlow pool: --threads, else DEFAULT_THREADS (at most the cores)."""
        if self.threads is not None:
            return self.threads
        return min(DEFAULT_THREADS, os.cpu_count() or 1)

    def network_config(self) -> NetworkConfig:
        """The network these settings build."""
        return _configured(DEFAULT_NETWORK, self)

    def training_config(self) -> TrainingConfig:
        """How these settings train (lr_decay_factor, without an option, stays the default)."""
        return _configured(DEFAULT_TRAINING, self)


Config = TypeVar("Config", NetworkConfig, TrainingConfig)


def _configured(defaults: Config, settings: TrainSettings) -> Config:
    """`defaults` with every field that has a setting of the same name taken from `settings`."""
    own = {field.name for field in fields(settings)}
    given = {f.name: getattr(settings, f.name) for f in fields(defaults) if f.name in own}
    return replace(defaults, **given)


def build_parser(prog: str) -> argparse.ArgumentParser:
    """One flag per option of TrainSettings, and `--no-jit-compile`; no abbreviations."""
    parser = parser_for(TrainSettings, prog, __doc__)
    jit = next(option for option in options_of(TrainSettings) if option.name == "jit_compile")
    parser.add_argument(
        "--no-jit-compile",
        dest=jit.name,
        action="store_const",
        const="false",
        help=f"do not XLA-compile (the default; overrides {jit.env})",
    )
    return parser


def rebuild_command(argv: list[str], args: argparse.Namespace, environ: Mapping[str, str]) -> str:
    """The command line that trains this model again: the variables that set options the
    flags did not, then `stocksent train` with the flags as given."""
    from_environment = [
        f"{option.env}={shlex.quote(environ[option.env])}"
        for option in options_of(TrainSettings)
        if getattr(args, option.name) is None and option.env in environ
    ]
    return " ".join([*from_environment, "stocksent train", *map(shlex.quote, argv)])


def read_splits(settings: TrainSettings, emit: Emit) -> dict[str, LabeledMessages]:
    """train, val and test (the first --limit rows of each when set), announced."""
    from model.data import read_split

    splits = {split: read_split(settings.data, split) for split in SPLITS}
    if settings.limit:
        n = settings.limit
        splits = {s: replace(d, texts=d.texts[:n], labels=d.labels[:n]) for s, d in splits.items()}
    for name, messages in splits.items():
        emit(f"{name}: {len(messages)} messages from {messages.source}")
    return splits


def export(trained: TrainedModel, settings: TrainSettings, out: Path) -> Predictor:
    """The SavedModel and its training log in `out`, opened again for scoring: scores come
    from the exported artifact itself, not the in-memory Keras model."""
    from model.export import export_savedmodel
    from model.predictor import Predictor

    export_savedmodel(
        trained.network, trained.vocabulary, out, settings.jit_compile, settings.pooling
    )
    _write_log(out / "training_log.csv", trained.history)
    return Predictor.open_savedmodel(out, {"model_version": "pending"})


def _write_log(path: Path, rows: list[dict[str, Any]]) -> None:
    keys = sorted({k for r in rows for k in r}, key=lambda k: (k != "epoch", k))
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)


def score(
    predictor: Predictor, splits: dict[str, LabeledMessages], emit: Emit
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Metrics and probabilities of val and test, each announced."""
    from model.metrics import classification_report

    metrics, probabilities = {}, {}
    for name in SCORED_SPLITS:
        probabilities[name] = predictor.predict(splits[name].texts)
        metrics[name] = classification_report(splits[name].labels, probabilities[name])
        emit(
            f"{name}: accuracy {metrics[name]['accuracy']:.4f}  "
            f"roc_auc {metrics[name]['roc_auc']:.4f}  log_loss {metrics[name]['log_loss']:.4f}"
        )
    return metrics, probabilities


def measure_baseline(
    splits: dict[str, LabeledMessages], test_probabilities: np.ndarray, emit: Emit
) -> dict[str, Any]:
    """The TF-IDF + LR baseline's accuracies and the LSTM against it on test, announced."""
    from model.baseline import tfidf_baseline
    from model.metrics import correct, paired_comparison

    baseline, predictions = tfidf_baseline(splits["train"], splits["val"], splits["test"])
    labels = splits["test"].labels
    baseline["lstm_vs_baseline_on_test"] = paired_comparison(
        correct(labels, test_probabilities), predictions == labels
    )
    emit(
        f"baseline: val {baseline['val_accuracy']:.4f} test {baseline['test_accuracy']:.4f}; "
        f"LSTM minus baseline on test {baseline['lstm_vs_baseline_on_test']}"
    )
    return baseline


@dataclass(frozen=True)
class Build:
    """What one run made: the splits, the trained and exported model, its scores and the
    command that makes it again."""

    splits: dict[str, LabeledMessages]
    trained: TrainedModel
    predictor: Predictor
    metrics: dict[str, Any]
    baseline: dict[str, Any] | None
    command: str


def manifest_fields(settings: TrainSettings, build: Build) -> dict[str, Any]:
    """What the manifest records of a build, besides what `write_manifest` adds."""
    from model import smoke
    from model.data import split_files

    trained = build.trained
    return {
        "vocabulary_size": len(trained.vocabulary),
        "network": settings.network_config().to_dict(),
        "training": settings.training_config().to_dict(),
        "jit_compile": settings.jit_compile,
        "best_epoch": trained.best_epoch,
        "training_seconds": round(trained.seconds, 1),
        "history": trained.history,
        "metrics": build.metrics,
        "baseline": build.baseline,
        "threshold": BULLISH_THRESHOLD,
        "data": {
            "directory_name": settings.data.resolve().name,
            "limit": settings.limit or None,
            # the prior the model learned: drift alerts compare live shares with it
            "bullish_share": round(float(build.splits["train"].labels.mean()), 6),
            "files": split_files(settings.data, build.splits),
        },
        "machine": machine_description(),
        "rebuild_command": build.command,
        smoke.MANIFEST_FIELD: smoke.record(build.predictor),
    }


def train_and_export(settings: TrainSettings, command: str, emit: Emit) -> dict[str, Any]:
    """Train on the train split (early stopping on val), export to --out, score val and test
    (and the baseline), write the manifest and model card; returns the manifest."""
    from model.card import write_card
    from model.export import write_manifest
    from model.training import train

    splits = read_splits(settings, emit)
    trained = train(
        splits["train"],
        splits["val"],
        settings.network_config(),
        settings.training_config(),
        emit,
        teacher_cache=settings.teacher_cache,
    )
    predictor = export(trained, settings, settings.out)
    metrics, probabilities = score(predictor, splits, emit)
    baseline = None
    if not settings.no_baseline:
        baseline = measure_baseline(splits, probabilities["test"], emit)
    build = Build(splits, trained, predictor, metrics, baseline, command)
    manifest = write_manifest(settings.out, manifest_fields(settings, build))
    write_card(settings.out, manifest)
    return manifest


def _emit(line: str) -> None:
    print(line, flush=True)


def main(argv: list[str], prog: str = "stocksent train") -> int:
    """Entry point: bad settings raise SettingsError (stocksent.cli: one line, exit 2)."""
    args = parse_flags(build_parser(prog), argv)
    settings = from_arguments(TrainSettings, args)
    limit_tensorflow_threads(settings.tensorflow_threads)
    manifest = train_and_export(settings, rebuild_command(argv, args, os.environ), _emit)
    _emit(f"exported model {manifest['model_version']} to {settings.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
