"""A broker restart under a running `stocksent classify`, on a broker of this test's own:
while it is away /readyz says the classifier cannot consume (and /healthz stays 200: a
restart would not help); once it is back, output resumes and offsets are committed within
seconds (kafka-python's reconnect backoff, 30 s at most by default, is capped at 1 s)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from kafka import KafkaConsumer, TopicPartition

from stocksent.local_kafka import LocalKafka
from tests.classifier_support import (
    STAND_IN_MODEL_SPEC,
    ClassifierProcess,
    InputMessage,
    input_records,
    records_in,
)
from tests.kafka_support import create_topic, drain, free_port_pair, produce
from tests.polling import wait_for

pytestmark = pytest.mark.integration

PARTITIONS = 3


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[LocalKafka]:
    broker = LocalKafka(port=free_port_pair(), home=tmp_path / "kafka")
    broker.up()
    try:
        yield broker
    finally:
        broker.down(wipe=True)


def messages(first: int, count: int) -> list[InputMessage]:
    return [InputMessage(first + i, f"$SPY calls {i}", "bullish") for i in range(count)]


def committed_everything(bootstrap: str, group: str, topic: str) -> bool:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group)
    try:
        partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        ends = consumer.end_offsets(partitions)
        return all(consumer.committed(tp) == ends[tp] for tp in partitions)
    except Exception:
        return False
    finally:
        consumer.close()


def test_after_a_broker_restart_output_and_commits_resume_within_seconds(
    own_broker: LocalKafka, tmp_path: Path
) -> None:
    bootstrap = own_broker.bootstrap
    topics = [create_topic(bootstrap, name, PARTITIONS) for name in ("in", "out")]
    create_topic(bootstrap, "dlq")
    args = [
        "--input-topic", "in", "--output-topic", "out", "--dlq-topic", "dlq",
        "--group-id", "restart", "--model", STAND_IN_MODEL_SPEC,
    ]  # fmt: skip
    service = ClassifierProcess(bootstrap, args, tmp_path / "classify.log")
    try:
        service.wait_ready(timeout=60)
        produce(bootstrap, topics[0], input_records(messages(1, 300)))
        wait_for(lambda: records_in(bootstrap, "out") == 300, 30, "the first 300 outputs")
        wait_for(lambda: committed_everything(bootstrap, "restart", "in"), 20, "commits")

        own_broker.down()
        wait_for(lambda: service.get("/readyz")[0] == 503, 20, "/readyz 503 without a broker")
        _, why = service.get("/readyz")
        assert "cannot consume" in why, why
        time.sleep(3)  # away a while: the client's reconnect backoff grows meanwhile
        assert service.get("/healthz")[0] == 200  # not stuck: a restart would not help

        own_broker.up()
        back = time.monotonic()
        produce(bootstrap, topics[0], input_records(messages(1001, 300)))
        wait_for(lambda: records_in(bootstrap, "out") > 300, 60, "output after the restart")
        first_output_s = time.monotonic() - back
        wait_for(lambda: committed_everything(bootstrap, "restart", "in"), 90, "all committed")
        committed_s = time.monotonic() - back
        wait_for(lambda: service.get("/readyz")[0] == 200, 20, "/readyz 200 again")
        ids = [orjson.loads(r.value)["id"] for r in drain(bootstrap, "out", expected=600)]
        exit_code = service.terminate()
    finally:
        service.terminate()
    print(
        f"\nbroker back -> first output {first_output_s:.1f}s, "
        f"-> every offset committed {committed_s:.1f}s"
    )
    assert set(ids) == {m.id for m in messages(1, 300) + messages(1001, 300)}
    assert exit_code == 0
    assert first_output_s < 10 and committed_s < 15
