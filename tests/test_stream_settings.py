"""stream.settings and stream.cli: flags, environment, validation errors, masked secrets."""

from __future__ import annotations

import gc
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from common import topics
from common.failures import BadInputError
from common.options import SettingsError, from_arguments
from stocksent.cli import main as stocksent_main
from stream import cli
from stream.settings import DEFAULT_INFERENCE_WORKERS, ClassifierSettings


def settings_from(args: dict[str, str], env: dict[str, str] | None = None) -> ClassifierSettings:
    return from_arguments(ClassifierSettings, args, environ=env or {})


def test_defaults_follow_the_contracts() -> None:
    s = settings_from({})
    assert (s.input_topic, s.output_topic, s.dlq_topic) == (
        topics.INPUT_TOPIC,
        topics.OUTPUT_TOPIC,
        topics.DLQ_TOPIC,
    )
    assert s.group_id == "stocksent-classifier"
    assert s.processing_guarantee == "at-least-once" and not s.exactly_once
    assert s.metrics_port == 9300 and s.metrics_host == "127.0.0.1"
    assert s.model == ""  # the committed pretrained artifact
    assert s.instance_id  # the host name
    assert s.inference_threads == 1  # one core for TensorFlow, the other for the Kafka loop
    assert s.inference_workers == DEFAULT_INFERENCE_WORKERS


def test_flag_wins_over_environment() -> None:
    s = settings_from(
        {"batch_size": "64"},
        {"STOCKSENT_BATCH_SIZE": "8", "STOCKSENT_PROCESSING_GUARANTEE": "exactly-once"},
    )
    assert s.batch_size == 64 and s.exactly_once
    assert s.transactional_id == f"stocksent-classifier.{s.instance_id}"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"batch_size": "0"}, "--batch-size: '0' is not valid: must be >= 1"),
        ({"batch_wait_ms": "-1"}, "--batch-wait-ms"),
        ({"inference_threads": "-1"}, "--inference-threads: '-1' is not valid"),
        ({"inference_workers": "0"}, "--inference-workers: '0' is not valid"),
        ({"processing_guarantee": "at-most-once"}, "not one of at-least-once, exactly-once"),
        ({"metrics_port": "70000"}, "--metrics-port"),
        ({"log_level": "loud"}, "--log-level"),
        ({"model": "/no/such/model"}, "no such model directory"),
        ({"model": "py:only-module"}, "py:package.module:factory"),
        ({"input_topic": "same", "output_topic": "same"}, "must differ"),
    ],
)
def test_bad_values_are_named(args: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message.replace("(", r"\(")):
        settings_from(args)


def test_environment_errors_name_the_variable() -> None:
    with pytest.raises(SettingsError, match="STOCKSENT_MAX_MESSAGE_BYTES"):
        settings_from({}, {"STOCKSENT_MAX_MESSAGE_BYTES": "lots"})


def test_symbols_are_normalised() -> None:
    assert settings_from({"symbols": "$spy, aapl,,"}).symbols == ("SPY", "AAPL")


def test_secrets_never_appear_in_the_printed_configuration() -> None:
    settings, shown = cli.parse(
        ["--sasl-mechanism", "PLAIN", "--sasl-password", "hunter2-secret"], "classify"
    )
    assert "hunter2-secret" not in shown and "sasl_password = ********" in shown
    assert "hunter2-secret" not in repr(settings)


def test_cli_reports_bad_settings_without_secrets(capsys: pytest.CaptureFixture[str]) -> None:
    code = stocksent_main(["classify", "--sasl-password", "hunter2-secret", "--batch-size", "zero"])
    err = capsys.readouterr().err
    assert code == 2 and "--batch-size: 'zero' is not valid" in err
    assert "hunter2-secret" not in err


def test_cli_logs_masked_configuration(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STOCKSENT_SASL_PASSWORD", "env-secret-value")

    def no_model(spec: str, inference_threads: int = 0, concurrent_calls: int = 1) -> object:
        raise RuntimeError("no model in this test")

    monkeypatch.setattr("stream.predictor.load_predictor", no_model)
    monkeypatch.setattr(cli, "check_kafka", lambda *_args: None)  # no broker in this test
    logging.getLogger().handlers.clear()
    with pytest.raises(BadInputError, match="cannot load it: no model in this test"):
        cli.main(["--metrics-port", "0"], "classify")
    err = capsys.readouterr().err
    assert "sasl_password = ********" in err and "env-secret-value" not in err


def test_freeze_startup_heap_takes_live_objects_out_of_collections() -> None:
    try:
        cli.freeze_startup_heap()
        assert gc.get_freeze_count() > 1000  # the interpreter's, pytest's, this module's
    finally:
        gc.unfreeze()


@pytest.mark.tensorflow
@pytest.mark.parametrize(("calls", "inter_op"), [(1, 1), (2, 2)])
def test_inference_threads_cap_tensorflow_pools(calls: int, inter_op: int) -> None:
    # A child process: TensorFlow's pools can only be sized before its first op runs. With
    # one inter-op thread, two calls at once would run one after the other.
    code = (
        "import tensorflow as tf\n"
        "from stream.predictor import load_predictor\n"
        f"p = load_predictor('', 1, {calls})\n"
        "t = tf.config.threading\n"
        "assert t.get_intra_op_parallelism_threads() == 1, t.get_intra_op_parallelism_threads()\n"
        f"assert t.get_inter_op_parallelism_threads() == {inter_op}\n"
        "assert 0.0 <= float(p.predict(['$SPY to the moon'])[0]) <= 1.0\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


def test_a_model_store_is_followed_every_ten_seconds_by_default(tmp_path: Path) -> None:
    (tmp_path / "CURRENT").write_text("v1\n")
    s = settings_from({}, {"STOCKSENT_MODEL_STORE": str(tmp_path)})
    assert s.model_store == str(tmp_path) and s.model == ""
    assert s.model_poll_s == 10.0
    assert settings_from({"model_store": str(tmp_path), "model_poll_s": "0.5"}).model_poll_s == 0.5


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"model": "MODEL", "model_store": "STORE"}, "give one, not both"),
        ({"model_store": "EMPTY"}, "not a model store \\(no CURRENT\\); create it with"),
        ({"model_store": "/no/such/store"}, "--model-store: '/no/such/store' is not valid"),
        ({"model_store": "STORE", "model_poll_s": "0"}, "--model-poll-s: '0' is not valid"),
    ],
)
def test_model_store_mistakes_are_settings_errors(
    tmp_path: Path, args: dict[str, str], message: str
) -> None:
    store, empty = tmp_path / "store", tmp_path / "empty"
    store.mkdir()
    empty.mkdir()
    (store / "CURRENT").write_text("v1\n")
    from model.predictor import PRETRAINED_DIR

    given = {
        k: v.replace("STORE", str(store))
        .replace("EMPTY", str(empty))
        .replace("MODEL", str(PRETRAINED_DIR))
        for k, v in args.items()
    }
    with pytest.raises(SettingsError, match=message):
        settings_from(given)


def test_cli_refuses_to_start_on_a_store_whose_current_cannot_serve(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli, "check_kafka", lambda *_args: None)  # no broker in this test
    (tmp_path / "CURRENT").write_text("v1\n")  # names a version the store does not hold
    logging.getLogger().handlers.clear()
    code = cli.main(["--metrics-port", "0", "--model-store", str(tmp_path)], "classify")
    err = capsys.readouterr().err
    assert code == 1
    assert "model version v1 refused (failed_store)" in err and "nothing to serve" in err
    assert "Traceback" not in err
