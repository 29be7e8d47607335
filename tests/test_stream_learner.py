"""The learner service without a broker: settings, reading records, triggers, restart state."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from common.kafka_settings import KafkaConnection
from common.options import SettingsError, from_arguments
from model.learning import RoundConfig, RoundResult
from model.store import ModelStore
from stocksent.cli import main as stocksent_main
from stream.learner import Learner, LearnerConfig, tagged_rows
from stream.learner_cli import LearnerSettings, duration, learner_config
from stream.learner_metrics import LearnerMetrics
from tests.learner_support import output_record


@dataclass
class Record:
    value: bytes
    timestamp: int = 1_796_400_000_000


def fake_model(directory: Path, version: str) -> Path:
    directory.mkdir(parents=True)
    (directory / "saved_model.pb").write_bytes(b"graph")
    (directory / "manifest.json").write_text(json.dumps({"model_version": version}))
    return directory


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90), ("90s", 90), ("15m", 900), ("6h", 21600), ("1h30m", 5400)]
)
def test_durations(text: str, seconds: float) -> None:
    assert duration(text) == seconds


@pytest.mark.parametrize("text", ["6x", "h", "0", "-5m", "6h 5"])
def test_bad_durations_say_what_is_expected(text: str) -> None:
    with pytest.raises(ValueError):
        duration(text)


def test_the_store_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    assert stocksent_main(["learn"]) == 2
    assert "--model-store: required" in capsys.readouterr().err


def test_defaults_are_the_issues(tmp_path: Path) -> None:
    values = {"model_store": str(tmp_path)}
    config = learner_config(from_arguments(LearnerSettings, values, environ={}))
    assert (config.window, config.min_new, config.every_s) == (200_000, 20_000, 6 * 3600)
    assert config.round.holdout_fraction == 0.2 and config.once is False
    assert config.from_topic == "stocktwits.sentiment" and config.base_data is None
    with pytest.raises(SettingsError, match="--base-data"):
        from_arguments(LearnerSettings, {**values, "base_data": str(tmp_path)}, environ={})


def test_only_tagged_records_with_a_body_count() -> None:
    records = [
        Record(output_record(1, "calls calls", 1, 0)),
        Record(output_record(2, "puts", 0, 1)),
        Record(output_record(3, "no tag", None, 2)),
        Record(b"not json"),
        Record(b"[1, 2]"),
    ]
    seen, rows = tagged_rows(records)
    assert seen == 5
    assert [(r[0], r[1], r[3]) for r in rows] == [(1, "calls calls", 1), (2, "puts", 0)]
    assert rows[0][2] == "2026-12-04T00:00:00Z" and rows[0][4] == 1_796_400_000.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def learner(store_dir: Path, clock: Clock, registry: CollectorRegistry) -> Learner:
    config = LearnerConfig(
        store=store_dir,
        from_topic="t",
        group_id="g",
        base_data=None,
        once=False,
        window=100,
        min_new=5,
        every_s=3600,
        checkpoint_s=60,
        training_threads=1,
        round=RoundConfig(),
    )
    return Learner(
        config, KafkaConnection(bootstrap_servers="127.0.0.1:1"), LearnerMetrics(registry), clock
    )


@pytest.mark.tensorflow
def test_triggers_counters_and_a_restart_keep_the_window(tmp_path: Path) -> None:
    """Loads TensorFlow (the window's text keys come from the serving normalisation)."""
    store = ModelStore.init(tmp_path / "store", fake_model(tmp_path / "m", "v1"))
    clock, registry = Clock(), CollectorRegistry()
    first = learner(store.root, clock, registry)
    assert first.round_due() is None
    words = ("alpha", "beta", "gamma", "delta")  # digits would all normalise to _num_
    records = [Record(output_record(i, f"{w} calls", i % 2, i)) for i, w in enumerate(words)]
    assert first.ingest(records) == 4
    assert first.ingest(records[:2]) == 0  # redelivered: nothing new
    assert first.round_due() is None
    first.ingest([Record(output_record(9, "a fifth text", 1, 9))])
    assert "5 new tagged messages" in str(first.round_due())
    assert registry.get_sample_value("stocksent_learner_window_messages") == 5
    assert registry.get_sample_value("stocksent_learner_records_consumed_total") == 7
    first.save_window()

    again = learner(store.root, clock, CollectorRegistry())
    assert [m.id for m in again.window] == [0, 1, 2, 3, 9]
    assert again.new_since_candidate == 5
    again.new_since_candidate = 0
    clock.now += 3600
    assert "3600s since the last round" in str(again.round_due())


def test_a_finished_round_is_counted_by_outcome(tmp_path: Path) -> None:
    store = ModelStore.init(tmp_path / "store", fake_model(tmp_path / "m", "v1"))
    registry = CollectorRegistry()
    service = learner(store.root, Clock(), registry)
    service.record(
        RoundResult(
            "rejected",
            "v1",
            "within noise",
            candidate="v2",
            training_seconds=12.5,
            candidate_holdout_accuracy=0.81,
            current_holdout_accuracy=0.8,
        )
    )
    service.record(RoundResult("skipped_too_few_tagged", "v1", "too few"))

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value("stocksent_learner_" + name, labels)

    assert value("decisions_total", outcome="rejected") == 1
    assert value("decisions_total", outcome="skipped_too_few_tagged") == 1
    assert value("decisions_total", outcome="promoted") == 0
    assert value("last_training_seconds") == 12.5
    assert value("candidate_holdout_accuracy") == 0.81
    assert value("current_holdout_accuracy") == 0.8
    assert value("last_decision_timestamp_seconds") == 1000.0


def test_a_new_directory_becomes_a_store_serving_the_committed_model(tmp_path: Path) -> None:
    from model.predictor import PRETRAINED_DIR
    from model.store import StoreError, read_manifest
    from stream.learner import open_store

    store = open_store(tmp_path / "new")
    assert store.current() == read_manifest(PRETRAINED_DIR)["model_version"]
    assert store.history()[0]["by"] == "learner"
    (tmp_path / "empty").mkdir()
    assert open_store(tmp_path / "empty").exists()
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("not a store")
    with pytest.raises(StoreError, match="not a model store"):
        open_store(tmp_path / "busy")  # a mistyped path never becomes a store
