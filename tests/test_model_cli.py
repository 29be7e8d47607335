"""`stocksent train` and `stocksent evaluate`: their settings, and end to end (small data)."""

from __future__ import annotations

import csv
import gzip
import json
import os
from dataclasses import asdict, fields
from pathlib import Path

import pytest

from common.failures import ExitCode
from common.options import SettingsError, from_arguments, options_of, parse_flags, parser_for
from model import evaluate_cli, train_cli
from model.hyperparameters import NetworkConfig, TrainingConfig
from tests.test_one_line_errors import assert_one_line_error, stocksent


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


# ---- settings: no TensorFlow, no training ------------------------------------------------


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A directory with the three splits (empty files: the settings only look for them)."""
    for split in ("train", "val", "test"):
        (tmp_path / f"{split}.csv.gz").write_bytes(b"")
    return tmp_path


def train_settings(
    data_dir: Path, *flags: str, environ: dict[str, str] | None = None
) -> train_cli.TrainSettings:
    argv = ["--data", str(data_dir), "--out", str(data_dir / "model"), *flags]
    args = parse_flags(train_cli.build_parser("stocksent train"), argv)
    return from_arguments(train_cli.TrainSettings, args, environ or {})


def test_train_defaults_are_the_config_dataclasses_defaults(data_dir: Path) -> None:
    settings = train_settings(data_dir)
    assert settings.network_config() == NetworkConfig()
    assert settings.training_config() == TrainingConfig()
    defaults = {**asdict(NetworkConfig()), **asdict(TrainingConfig())}
    declared = {o.name: o.default for o in options_of(train_cli.TrainSettings)}
    shared = defaults.keys() & declared.keys()
    assert len(shared) == len(fields(NetworkConfig)) + len(fields(TrainingConfig)) - 1
    assert {name: declared[name] for name in shared} == {name: defaults[name] for name in shared}
    assert "lr_decay_factor" not in declared  # no option: TrainingConfig's value, always


def test_train_flags_reach_the_configs(data_dir: Path) -> None:
    settings = train_settings(
        data_dir,
        *("--lstm-units", "8,4", "--pooling", "last+max", "--subword-buckets", "16"),
        *("--epochs", "3", "--lr-monitor", "val_accuracy", "--distill-from", "nbsvm-oof"),
        *("--soft-target-weight", "0.5", "--teacher-c", "0.1", "--no-baseline"),
    )
    network, training = settings.network_config(), settings.training_config()
    assert (network.lstm_units, network.pooling, network.subword_buckets) == (
        (8, 4),
        "last+max",
        16,
    )
    assert (training.epochs, training.lr_monitor, training.distill_from) == (
        3,
        "val_accuracy",
        "nbsvm-oof",
    )
    assert (training.soft_target_weight, training.teacher_c) == (0.5, 0.1)
    assert settings.no_baseline and not settings.jit_compile


def test_train_reads_its_own_variables_and_the_flag_wins(data_dir: Path) -> None:
    environ = {
        "STOCKSENT_TRAIN_EPOCHS": "3",
        "STOCKSENT_TRAIN_LSTM_UNITS": "16",
        "STOCKSENT_TRAIN_JIT_COMPILE": "true",
        "STOCKSENT_EPOCHS": "7",  # the learner's: not train's
    }
    settings = train_settings(data_dir, environ=environ)
    assert settings.epochs == 3 and settings.lstm_units == (16,) and settings.jit_compile
    flagged = train_settings(data_dir, "--epochs", "5", "--no-jit-compile", environ=environ)
    assert flagged.epochs == 5 and not flagged.jit_compile
    from_variables = from_arguments(
        train_cli.TrainSettings,
        {},
        {"STOCKSENT_TRAIN_DATA": str(data_dir), "STOCKSENT_TRAIN_OUT": str(data_dir / "m")},
    )
    assert from_variables.data == data_dir


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--epochs", "0"], "--epochs: '0' is not valid: must be >= 1"),
        (["--word-dropout", "1"], "--word-dropout: '1' is not valid: must be between 0 and 1"),
        (["--lstm-units", "8,x"], "--lstm-units: '8,x' is not valid: must be comma-separated"),
        (["--learning-rate", "fast"], "--learning-rate: 'fast' is not valid: must be a number"),
        (["--distill-folds", "1"], "--distill-folds: '1' is not valid: must be >= 2"),
        (["--threads", "-1"], "--threads: '-1' is not valid: must be >= 0"),
        (["--jit-compile", "--subword-buckets", "8"], "--jit-compile: cannot be used with"),
    ],
)
def test_a_bad_train_value_names_its_flag(data_dir: Path, flags: list[str], message: str) -> None:
    with pytest.raises(SettingsError) as raised:
        train_settings(data_dir, *flags)
    assert str(raised.value).startswith(message)
    assert "\n" not in str(raised.value)


def test_train_data_must_hold_the_three_splits(tmp_path: Path) -> None:
    (tmp_path / "train.csv").write_text("message,sentiment\n")
    with pytest.raises(SettingsError, match=r"^--data: .*: no val\.csv\.gz or val\.csv$"):
        train_settings(tmp_path)


def test_train_threads_default_to_two_at_most_the_cores(data_dir: Path) -> None:
    assert train_settings(data_dir).tensorflow_threads == min(2, os.cpu_count() or 1)
    assert train_settings(data_dir, "--threads", "0").tensorflow_threads == 0
    assert train_settings(data_dir, "--threads", "3").tensorflow_threads == 3


def test_the_rebuild_command_names_the_variables_the_flags_did_not_override(
    data_dir: Path,
) -> None:
    argv = ["--data", str(data_dir), "--out", "my model", "--epochs", "5"]
    args = parse_flags(train_cli.build_parser("stocksent train"), argv)
    environ = {"STOCKSENT_TRAIN_EPOCHS": "3", "STOCKSENT_TRAIN_POOLING": "last+max", "HOME": "/"}
    command = train_cli.rebuild_command(argv, args, environ)
    assert command == (
        f"STOCKSENT_TRAIN_POOLING=last+max stocksent train --data {data_dir} "
        "--out 'my model' --epochs 5"
    )
    assert train_cli.rebuild_command(argv, args, {}).startswith("stocksent train --data ")


def test_evaluate_settings(tmp_path: Path) -> None:
    parser = parser_for(evaluate_cli.EvaluateSettings, "stocksent evaluate")
    settings = from_arguments(evaluate_cli.EvaluateSettings, parser.parse_args([]), {
        "STOCKSENT_EVALUATE_DATA": "eval.csv",
        "STOCKSENT_EVALUATE_JSON": "true",
    })  # fmt: skip
    assert settings.data == Path("eval.csv") and settings.json and not settings.plots
    assert settings.model is None and settings.batch_size == evaluate_cli.DEFAULT_BATCH_SIZE
    with pytest.raises(
        SettingsError, match=r"^--data: required \(or set STOCKSENT_EVALUATE_DATA\)"
    ):
        from_arguments(evaluate_cli.EvaluateSettings, {}, {})
    with pytest.raises(SettingsError, match=r"^--batch-size: '0' is not valid"):
        from_arguments(evaluate_cli.EvaluateSettings, {"data": "x", "batch_size": "0"}, {})


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["train"], "--data, --out: required (or set STOCKSENT_TRAIN_DATA, STOCKSENT_TRAIN_OUT)"),
        (["train", "--epoch", "3"], "unrecognized arguments: --epoch 3 (did you mean --epochs?)"),
        (["train", "--data", "/nonexistent", "--out", "o"], "--data: /nonexistent: no train"),
        (["evaluate", "--json"], "--data: required (or set STOCKSENT_EVALUATE_DATA)"),
    ],
)
def test_a_wrong_command_line_is_one_line_before_tensorflow_loads(
    argv: list[str], expected: str
) -> None:
    code, out, err, seconds = stocksent(*argv)
    line = assert_one_line_error(code, out, err, seconds, ExitCode.BAD_INPUT)
    assert line.startswith(f"stocksent {argv[0]}: error: {expected}"), line
    assert "tensorflow" not in err.lower()
