"""`stocksent learn` end to end on a real broker, with a tiny model.

Tagged output records in; the learner reads them with its own group, trains a candidate in
its own process, and promotes or rejects it with a history line. A second run (a restart)
starts from the saved window and the committed offsets: the round sees the old messages and
the new ones, each once. Each run loads TensorFlow twice (learner and round): about 30 s.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from model.store import ModelStore
from model.tagged_window import TaggedWindow, text_keys
from stocksent.service_process import REPO_ROOT
from tests.kafka_support import produce
from tests.learner_support import export_tiny_parent, output_record, stream_messages

pytestmark = [pytest.mark.integration, pytest.mark.tensorflow]


def learn(store: Path, bootstrap: str, topic: str, group: str, *extra: str) -> tuple[int, str]:
    """Runs `stocksent learn --once` as an operator would; returns (exit code, its log)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "stocksent.cli",
            "learn",
            "--once",
            "--model-store",
            str(store),
            "--bootstrap-servers",
            bootstrap,
            "--from-topic",
            topic,
            "--learner-group-id",
            group,
            "--metrics-port",
            "0",
            "--min-per-label",
            "20",
            "--epochs",
            "6",
            "--learning-rate",
            "0.02",
            "--training-threads",
            "1",
            *extra,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )
    return done.returncode, done.stderr


def records(first_id: int, texts: list[str], labels: list[int]) -> list[tuple[bytes, bytes, None]]:
    out = []
    for i, (text, label) in enumerate(zip(texts, labels, strict=True)):
        message_id = first_id + i
        # every fifth message untagged: the learner skips it
        tag = None if message_id % 5 == 0 else label
        out.append(
            (str(message_id).encode(), output_record(message_id, text, tag, message_id), None)
        )
    return out


def tagged_distinct(batch: list[tuple[bytes, bytes, None]]) -> int:
    values = [json.loads(v) for _, v, _ in batch]
    tagged = [v for v in values if v["author_sentiment"]]
    return len(set(text_keys([v["body"] for v in tagged])))


def test_learn_once_decides_and_a_restart_keeps_the_window(
    tmp_path: Path, kafka_bootstrap: str, make_topic: Callable[..., str], group_id: str
) -> None:
    store = ModelStore.init(tmp_path / "store", export_tiny_parent(tmp_path / "parent"))
    parent = store.current()
    topic = make_topic("sentiment", partitions=2)

    texts, labels = stream_messages(900, seed=31)
    first = records(1, texts[:600], labels[:600])
    produce(kafka_bootstrap, topic, first)
    code, log = learn(store.root, kafka_bootstrap, topic, group_id)
    assert code == 0, log
    decision = store.history()[-1]
    assert decision["action"] in ("promote", "reject"), log
    assert decision["by"] == "learner" and decision["parent"] == parent
    assert decision["candidate"] in store.versions()
    for part in ("training_part", "holdout"):
        assert {"messages", "bullish", "bearish", "time_range", "sha256"} <= set(
            decision["data"][part]
        )
    assert {"candidate", "current", "paired"} <= set(decision["metrics"]["holdout"])
    seen = tagged_distinct(first)
    window_path = store.root / "learner" / "window.jsonl.gz"
    window, state = TaggedWindow.load(window_path)
    assert len(window) == seen
    assert state["new_since_candidate"] == 0
    data = decision["data"]
    assert data["training_part"]["messages"] + data["holdout"]["messages"] == seen

    second = records(601, texts[600:], labels[600:])
    produce(kafka_bootstrap, topic, second)
    code, log = learn(store.root, kafka_bootstrap, topic, group_id)
    assert code == 0, log
    assert f"window restored from {window_path}: {seen} tagged messages" in log
    again = store.history()[-1]
    assert again["at"] >= decision["at"] and len(store.history()) == 3
    total = tagged_distinct(first + second)
    counted = again["data"]["training_part"]["messages"] + again["data"]["holdout"]["messages"]
    assert counted == total  # old and new messages, each once (offsets resumed, ids deduped)
    assert again["parent"] == store.history()[-2]["current"]


def test_learn_once_with_too_few_tags_exits_3_without_a_candidate(
    tmp_path: Path, kafka_bootstrap: str, make_topic: Callable[..., str], group_id: str
) -> None:
    from tests.test_stream_learner import fake_model

    store = ModelStore.init(tmp_path / "store", fake_model(tmp_path / "m", "v1"))
    topic = make_topic("sentiment")
    texts, labels = stream_messages(30, seed=2)
    produce(kafka_bootstrap, topic, records(1, texts, labels))
    code, log = learn(store.root, kafka_bootstrap, topic, group_id)
    assert code == 5, log
    assert "too few tagged messages" in log
    assert [h["action"] for h in store.history()] == ["init"]


def test_the_service_triggers_on_new_tags_keeps_consuming_and_stops_cleanly(
    tmp_path: Path, kafka_bootstrap: str, make_topic: Callable[..., str], group_id: str
) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    from stocksent.service_process import ServiceProcess
    from tests.polling import wait_for

    store = ModelStore.init(tmp_path / "store", export_tiny_parent(tmp_path / "parent"))
    topic = make_topic("sentiment", partitions=2)
    texts, labels = stream_messages(800, seed=41)
    service = ServiceProcess(
        "learn",
        [
            "--model-store",
            str(store.root),
            "--bootstrap-servers",
            kafka_bootstrap,
            "--from-topic",
            topic,
            "--learner-group-id",
            group_id,
            "--min-new",
            "400",
            "--every",
            "1d",
            "--checkpoint-s",
            "1",
            "--min-per-label",
            "20",
            "--epochs",
            "6",
            "--learning-rate",
            "0.02",
        ],
        tmp_path / "learner.log",
    )

    def metric(name: str, **labels: str) -> float:
        _, body = service.get("/metrics")
        for family in text_string_to_metric_families(body):
            for sample in family.samples:
                if sample.name == "stocksent_learner_" + name and sample.labels == labels:
                    return float(sample.value)
        return float("nan")

    try:
        service.wait_ready(path="/healthz")
        batch = records(1, texts[:600], labels[:600])
        produce(kafka_bootstrap, topic, batch)
        wait_for(lambda: metric("training") == 1, 120, "a round triggered by --min-new")
        # the service keeps reading while the round trains in its own process
        later = records(601, texts[600:], labels[600:])
        produce(kafka_bootstrap, topic, later)
        wait_for(
            lambda: metric("records_consumed_total") == len(batch) + len(later),
            60,
            "the later records consumed",
        )
        wait_for(lambda: metric("training") == 0, 240, "the round to end")
        decided = sum(metric("decisions_total", outcome=o) for o in ("promoted", "rejected"))
        assert decided == 1, service.log()
        assert len(store.history()) == 2 and store.history()[-1]["by"] == "learner"
        assert metric("last_training_seconds") > 0
        assert metric("window_messages") == tagged_distinct(batch + later)
        # the messages that arrived during the round still count as new for the next one
        assert 0 < metric("new_tagged_messages") <= tagged_distinct(later)
    finally:
        code = service.terminate(timeout=60)
    assert code == 0, service.log()
    saved, _ = TaggedWindow.load(store.root / "learner" / "window.jsonl.gz")
    assert len(saved) == tagged_distinct(batch + later)
