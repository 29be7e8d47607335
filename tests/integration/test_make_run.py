"""`make run`, the README's first command: a short replay flows to the labeled topic, and a
Ctrl-C (SIGINT to the process group, as a terminal sends it) stops everything cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from pathlib import Path

import orjson
import pytest

from common import topics
from stocksent.local_kafka import free_port
from stocksent.service_process import REPO_ROOT
from tests.kafka_support import drain, free_port_pair
from tests.polling import wait_for

pytestmark = pytest.mark.integration

MESSAGES = [
    "$SPY breaking out, loading calls for tomorrow",
    "$SPY puts printing, this market is going to crash hard",
    "$AAPL earnings beat, strong buy, going higher",
    "$TSLA overvalued garbage, shorting more at the open",
    "$SPY new all time high, bulls in control",
]


def _processes_mentioning(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker.encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def test_make_run_streams_labels_and_stops_on_sigint(kafka_bootstrap: str, tmp_path: Path) -> None:
    replay = tmp_path / "replay.jsonl"
    replay.write_bytes(
        b"".join(
            orjson.dumps(
                {
                    "id": 9_000_000 + i,
                    "body": body,
                    "created_at": "2026-11-26T12:00:00Z",
                    "symbols": [{"symbol": body.split()[0][1:]}],
                }
            )
            + b"\n"
            for i, body in enumerate(MESSAGES)
        )
    )
    before = (
        len(drain(kafka_bootstrap, topics.OUTPUT_TOPIC, idle_s=1.0))
        if _topic_exists(kafka_bootstrap)
        else 0
    )
    metrics_port = free_port_pair()
    aggregator_port = free_port()
    env = {
        **os.environ,
        "STOCKSENT_LOG_DIR": str(tmp_path / "logs"),
        "STOCKSENT_CLASSIFIER_METRICS_PORT": str(metrics_port),
        "STOCKSENT_PRODUCER_METRICS_PORT": str(metrics_port + 1),
        "STOCKSENT_AGGREGATOR_METRICS_PORT": str(aggregator_port),
        # every row shown (the default 4 a second would hide some of a burst of 5)
        "STOCKSENT_ROWS_PER_SECOND": "100",
    }
    # as a terminal's foreground job, which never starts with Ctrl-C ignored: a job that a
    # shell put in the background does, and make (and so this test) would inherit that
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        make = subprocess.Popen(
            [
                "make",
                "--no-print-directory",
                "run",
                f"BOOTSTRAP={kafka_bootstrap}",
                "SOURCE=replay",
                f"REPLAY={replay}",
                "RATE=50",
            ],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    finally:
        signal.signal(signal.SIGINT, inherited)
    lines: list[str] = []  # make's output so far, read as it comes

    def read_output() -> None:
        for line in make.stdout or ():
            lines.append(line.decode(errors="replace"))

    reader = threading.Thread(target=read_output, daemon=True)
    reader.start()
    try:
        records = drain(
            kafka_bootstrap,
            topics.OUTPUT_TOPIC,
            expected=before + len(MESSAGES),
            timeout_s=180,
            idle_s=0.5,
        )
        labeled = [orjson.loads(r.value) for r in records]
        ours = {rec["id"]: rec for rec in labeled if 9_000_000 <= rec["id"] < 9_000_100}
        assert sorted(ours) == [9_000_000 + i for i in range(len(MESSAGES))]
        assert all(rec["sentiment"]["label"] in ("bullish", "bearish") for rec in ours.values())
        # the live view showed every one of our messages
        wait_for(
            lambda: all(body in "".join(lines) for body in MESSAGES),
            timeout=30,
            what="the live view to print every message",
        )
    finally:
        os.killpg(make.pid, signal.SIGINT)
        make.wait(timeout=60)
        reader.join(timeout=10)
    text = "".join(lines)
    assert "metrics: classifier http://127.0.0.1:" in text, text
    assert f"aggregator http://127.0.0.1:{aggregator_port}/metrics" in text, text
    assert "all stopped (exit 0)" in text, text
    # make itself ends by the interrupt, after waiting for `stocksent run` to finish
    assert make.returncode == -signal.SIGINT, text
    wait_for(
        lambda: not any(_processes_mentioning(str(p)) for p in (metrics_port, aggregator_port)),
        timeout=20,
        what="the children of run to exit",
    )


def _topic_exists(bootstrap: str) -> bool:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        return topics.OUTPUT_TOPIC in consumer.topics()
    finally:
        consumer.close()
