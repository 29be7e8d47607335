"""Faults against the real broker with `stocksent classify` as a child process: kill -9 and
restart (nothing lost; in exactly-once mode nothing twice), and two instances in one group
(both work; stopping one loses nothing)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
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
    records_in,
)
from tests.kafka_support import drain
from tests.polling import wait_for

pytestmark = pytest.mark.integration

P = "stocksent_classifier_"


def synthetic_messages(count: int) -> list[InputMessage]:
    """Varied short texts; these tests are about delivery, not about labels."""
    words = ["$SPY calls", "puts on $SPY", "bull flag", "dump it", "going up", "red day"]
    return [
        InputMessage(5_000_000 + i, f"{words[i % len(words)]} #{i}", "bullish")
        for i in range(count)
    ]


def output_ids(bootstrap: str, topic: str, expected: int, isolation: str) -> Counter[int]:
    records = drain(
        bootstrap, topic, expected=expected, timeout_s=120, idle_s=1.5, isolation_level=isolation
    )
    return Counter(orjson.loads(r.value)["id"] for r in records)


@pytest.mark.parametrize("guarantee", ["at-least-once", "exactly-once"])
def test_kill_9_mid_stream_then_restart_loses_nothing(
    guarantee: str,
    kafka_bootstrap: str,
    make_topic: Callable[..., str],
    group_id: str,
    tmp_path: Path,
) -> None:
    input_topic, output_topic = make_topic("in", 6), make_topic("out", 6)
    dlq_topic = make_topic("dlq", 1)
    messages = synthetic_messages(6000)
    args = [
        "--input-topic", input_topic,
        "--output-topic", output_topic,
        "--dlq-topic", dlq_topic,
        "--group-id", group_id,
        "--instance-id", "only",  # the restart reuses it: fences the dead transaction
        "--model", model_spec(),
        "--processing-guarantee", guarantee,
        "--batch-size", "64",
    ]  # fmt: skip
    first = ClassifierProcess(kafka_bootstrap, args, tmp_path / "first.log")
    first.wait_ready()
    feeder = produce_over_time(kafka_bootstrap, input_topic, input_records(messages), seconds=4)
    wait_for(lambda: records_in(kafka_bootstrap, output_topic) >= 1000, 60, "first outputs")
    first.kill()
    assert records_in(kafka_bootstrap, output_topic) < len(messages), "killed too late"

    second = ClassifierProcess(kafka_bootstrap, args, tmp_path / "second.log")
    try:
        second.wait_ready()
        feeder.join(timeout=60)
        isolation = "read_committed" if guarantee == "exactly-once" else "read_uncommitted"
        seen = output_ids(kafka_bootstrap, output_topic, len(messages), isolation)
    finally:
        assert second.terminate() == 0, second.log()
    missing = {m.id for m in messages} - set(seen)
    assert not missing, f"{len(missing)} ids lost after kill -9, e.g. {sorted(missing)[:5]}"
    if guarantee == "exactly-once":
        twice = [i for i, n in seen.items() if n > 1]
        assert not twice, f"{len(twice)} ids twice to a read_committed reader"
    assert drain(kafka_bootstrap, dlq_topic, idle_s=0.5) == []


def test_two_instances_share_the_work_and_stopping_one_loses_nothing(
    kafka_bootstrap: str,
    make_topic: Callable[..., str],
    group_id: str,
    tmp_path: Path,
) -> None:
    input_topic, output_topic = make_topic("in", 6), make_topic("out", 6)
    dlq_topic = make_topic("dlq", 1)
    messages = synthetic_messages(8000)
    common = [
        "--input-topic", input_topic,
        "--output-topic", output_topic,
        "--dlq-topic", dlq_topic,
        "--group-id", group_id,
        "--model", model_spec(),
        "--batch-size", "64",
    ]  # fmt: skip
    a = ClassifierProcess(kafka_bootstrap, [*common, "--instance-id", "a"], tmp_path / "a.log")
    b = ClassifierProcess(kafka_bootstrap, [*common, "--instance-id", "b"], tmp_path / "b.log")
    try:
        a.wait_ready()
        b.wait_ready()
        # both hold partitions once the group settled
        wait_for(
            lambda: a.get("/readyz")[0] == 200 and b.get("/readyz")[0] == 200, 30, "both ready"
        )
        feeder = produce_over_time(kafka_bootstrap, input_topic, input_records(messages), 6)

        def consumed(process: ClassifierProcess) -> float:
            return metric_value(process.get("/metrics")[1], P + "messages_consumed_total")

        wait_for(lambda: consumed(a) > 0 and consumed(b) > 0, 60, "both instances working")
        assert b.terminate(timeout=15) == 0, b.log()  # graceful stop mid-stream
        feeder.join(timeout=60)
        seen = output_ids(kafka_bootstrap, output_topic, len(messages), "read_uncommitted")
        assert consumed(a) > 0
    finally:
        assert a.terminate() == 0, a.log()
    missing = {m.id for m in messages} - set(seen)
    assert not missing, f"{len(missing)} ids lost when one instance stopped"
