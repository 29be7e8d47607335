"""The benchmark's latency measurement against the real broker and classifier (the constant
stand-in model, so no TensorFlow): the Java load generator offers every record once, each is
matched to its output, the generator's warm-up records are not counted, and the percentiles
are ordered and plausible."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from bench import pipeline
from bench.constant_model import SPEC

pytestmark = pytest.mark.integration

RATE = 500.0  # msgs/s: far below what the classifier's Kafka path drains
SECONDS = 2.0


def test_offered_load_latency_matches_every_offered_record(
    kafka_bootstrap: str, make_topic: Callable[..., str], group_id: str, tmp_path: Path
) -> None:
    topic_in, topic_out, topic_dlq = (make_topic(n, partitions=2) for n in ("in", "out", "dlq"))
    classifier = pipeline.start_classifier(
        kafka_bootstrap, topic_in, topic_out, topic_dlq, group_id, tmp_path / "classifier.log",
        ["--model", SPEC, "--batch-wait-ms", "5"],
    )  # fmt: skip
    try:
        messages = [{"id": i, "body": f"$SPY message {i}"} for i in range(1, 101)]
        figures = pipeline.offered_load_latency(
            kafka_bootstrap, topic_in, topic_out, messages, RATE, SECONDS, warm_up_s=1.0,
            work_dir=tmp_path,
        )  # fmt: skip
    finally:
        classifier.terminate()
    offered = int(RATE * SECONDS)
    # the warm-up records went to their own topic: only the offered ones were classified
    assert figures["latency_sent"] == figures["latency_received"] == offered
    assert 0 < figures["latency_generator_cores"] < 2
    p50, p95, p99 = (figures[f"latency_p{q}_ms"] for q in (50, 95, 99))
    assert 0 <= p50 <= p95 <= p99 <= figures["latency_max_ms"] < 10_000
