"""The sample replay in the repo (samples/stocktwits-messages.jsonl), as the README runs it,
through the whole pipeline: `stocksent run --source replay` with the committed model. Every
well-formed message comes out labeled, once; each malformed line lands in the DLQ with the
reason samples/generate.py wrote it for; the run says when all of them are processed."""

from __future__ import annotations

import importlib.util
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson
import pytest

from common import topics
from stocksent.local_kafka import free_port, free_port_pair
from stocksent.run import SAMPLE_REPLAY
from stocksent.service_process import REPO_ROOT
from tests.kafka_support import drain

pytestmark = pytest.mark.integration


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "sample_generator", SAMPLE_REPLAY.parent / "generate.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _as_published(line: bytes) -> bytes:
    try:
        parsed = orjson.loads(line)
    except orjson.JSONDecodeError:
        return line
    return orjson.dumps(parsed) if isinstance(parsed, dict) else line


def test_the_sample_file_is_what_its_generator_writes(tmp_path: Path) -> None:
    generator = _generator()
    generator.OUT = tmp_path / "sample.jsonl"
    generator.main()
    assert generator.OUT.read_bytes() == SAMPLE_REPLAY.read_bytes()


def test_sample_replay_through_the_whole_pipeline(kafka_bootstrap: str, tmp_path: Path) -> None:
    generator = _generator()
    lines = SAMPLE_REPLAY.read_bytes().splitlines()
    well_formed = {}
    for line in lines:
        try:
            message = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if isinstance(message, dict) and message.get("id") in range(
            generator.FIRST_ID, generator.FIRST_ID + generator.COUNT
        ):
            well_formed[message["id"]] = message
    # the producer publishes a parsed object re-serialised (orjson: no spaces), other lines as they are
    malformed = {_as_published(line.encode()): reason for line, reason in generator.MALFORMED}
    assert len(well_formed) == generator.COUNT == 300
    assert len(lines) == 300 + len(malformed)

    metrics = free_port_pair()
    run = subprocess.Popen(
        [
            sys.executable, "-m", "stocksent.cli", "run",
            "--bootstrap-servers", kafka_bootstrap,
            "--source", "replay", "--replay", str(SAMPLE_REPLAY.relative_to(REPO_ROOT)),
            "--rate", "100",
            "--classifier-metrics-port", str(metrics),
            "--producer-metrics-port", str(metrics + 1),
            "--aggregator-metrics-port", str(free_port()),
            "--log-dir", str(tmp_path / "logs"),
        ],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 240
        labeled: dict[int, dict[str, Any]] = {}
        while len(labeled) < len(well_formed) and time.monotonic() < deadline:
            records = drain(kafka_bootstrap, topics.OUTPUT_TOPIC, idle_s=1.0, timeout_s=60)
            labeled = {}
            for record in records:
                value = orjson.loads(record.value)
                if value["id"] in well_formed:
                    assert value["id"] not in labeled, f"{value['id']} labeled twice"
                    labeled[value["id"]] = value
            time.sleep(2)
        assert set(labeled) == set(well_formed)
        for ident, value in labeled.items():
            assert value["sentiment"]["label"] in ("bullish", "bearish")
            assert value["model_version"] != "constant"
            tag = (well_formed[ident]["entities"]["sentiment"] or {}).get("basic")
            assert value["author_sentiment"] == (tag.lower() if tag else None)
        dead = {
            record.value: dict(record.headers)["dlq_reason"].decode()
            for record in drain(kafka_bootstrap, topics.DLQ_TOPIC, idle_s=1.0)
            if record.value in malformed
        }
        assert dead == malformed
        # the live view says so once the classifier has caught up (a status tick: 5 s)
        time.sleep(7)
    finally:
        os.killpg(run.pid, signal.SIGINT)
        output, _ = run.communicate(timeout=60)
    text = output.decode(errors="replace")
    assert re.search(r"all 306 messages processed: \d+ labeled, \d+ dead-lettered", text), text
    assert "producer finished: 306 messages published" in text, text
    assert "dead letter:" in text and "invalid_json" in text, text
    assert "all stopped (exit 0)" in text, text
    assert "Traceback" not in text
