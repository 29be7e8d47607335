"""A third instance joins a group of two while the stream runs: how long from its start to
its first output, and what bounds that (start-up and model load, then the group join).
Nothing is lost meanwhile. Slow (three TensorFlow processes): `make test-slow`."""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import orjson
import pytest

from tests.classifier_support import (
    ClassifierProcess,
    InputMessage,
    input_records,
    metric_value,
    model_spec,
    produce_over_time,
)
from tests.kafka_support import drain
from tests.polling import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(600)]

P = "stocksent_classifier_"


def stamp(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S,%f")


def published(process: ClassifierProcess) -> float:
    return metric_value(process.get("/metrics")[1], P + "records_published_total")


def test_a_third_instance_takes_partitions_within_seconds_of_being_ready(
    kafka_bootstrap: str, make_topic: Callable[..., str], group_id: str, tmp_path: Path
) -> None:
    input_topic, output_topic = make_topic("in", 6), make_topic("out", 6)
    common = [
        "--input-topic", input_topic, "--output-topic", output_topic,
        "--dlq-topic", make_topic("dlq", 1), "--group-id", group_id, "--model", model_spec(),
        "--batch-size", "64",
    ]  # fmt: skip
    messages = [InputMessage(9_000_000 + i, f"$SPY calls #{i}", "bullish") for i in range(12000)]
    first = [
        ClassifierProcess(kafka_bootstrap, [*common, "--instance-id", n], tmp_path / f"{n}.log")
        for n in ("a", "b")
    ]
    third: ClassifierProcess | None = None
    try:
        for process in first:
            process.wait_ready(timeout=120)
        feeder = produce_over_time(kafka_bootstrap, input_topic, input_records(messages), 40)
        wait_for(lambda: all(published(p) > 0 for p in first), 60, "two instances working")

        third = ClassifierProcess(kafka_bootstrap, [*common, "--instance-id", "c"],
                                  tmp_path / "c.log")  # fmt: skip
        ready_s = third.wait_ready(timeout=120)  # /readyz: model loaded, partitions assigned
        wait_for(lambda: published(third) > 0, 60, "the third instance's first output")  # type: ignore[arg-type]
        first_output_s = time.monotonic() - third.started
        log = third.log(tail=100_000)
        feeder.join(timeout=120)
        records = drain(kafka_bootstrap, output_topic, expected=len(messages), timeout_s=180)
    finally:
        for process in [*first, *([third] if third else [])]:
            process.terminate()
    loaded = re.search(r"^(\S+ \S+) INFO \S+: model \S+ loaded in ([\d.]+)s", log, re.M)
    assigned = re.search(r"^(\S+ \S+) INFO \S+: partitions assigned: (?!none)", log, re.M)
    assert loaded and assigned, log[-3000:]
    model_load_s = float(loaded.group(2))
    join_s = (stamp(assigned.group(1)) - stamp(loaded.group(1))).total_seconds()
    print(
        f"\nthird instance: start -> ready (partitions assigned) {ready_s:.1f}s "
        f"(model load {model_load_s:.1f}s, then group join {join_s:.1f}s), "
        f"-> first output {first_output_s:.1f}s"
    )
    seen = Counter(orjson.loads(r.value)["id"] for r in records)
    assert not {m.id for m in messages} - set(seen), "ids lost in the rebalance"
    assert first_output_s - ready_s < 10  # once ready, it takes its partitions in seconds
