"""Shared fixtures: a real Apache Kafka broker for the session, and per-test topics.

The broker is the project's own local KRaft broker (`stocksent.local_kafka`), started on a
free loopback port in a temporary folder, unless KAFKA_BOOTSTRAP_SERVERS names one already
running. Each test creates its own topics with unique names, so tests never share state.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from model.data import CANONICAL_SPLIT_DIR
from tests.kafka_support import create_topic, free_port_pair, unique_name

DATA_DIR = CANONICAL_SPLIT_DIR
SHARED_DIR = DATA_DIR.parents[1]
SAMPLES_DIR = SHARED_DIR / "stocktwits-api-samples"


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Bootstrap address of a real broker: KAFKA_BOOTSTRAP_SERVERS, or one started here."""
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if configured:
        yield configured
        return
    from stocksent.local_kafka import LocalKafka

    broker = LocalKafka(port=free_port_pair(), home=tmp_path_factory.mktemp("kafka"))
    broker.up()
    try:
        yield broker.bootstrap
    finally:
        broker.down(wipe=True)


@pytest.fixture
def make_topic(kafka_bootstrap: str) -> Callable[..., str]:
    """Creates a fresh, uniquely named topic: make_topic(prefix="t", partitions=1)."""

    def _make(prefix: str = "test", partitions: int = 1, **configs: str) -> str:
        return create_topic(kafka_bootstrap, unique_name(prefix), partitions, configs or None)

    return _make


@pytest.fixture
def group_id() -> str:
    """A consumer group id no other test uses."""
    return unique_name("group")


@pytest.fixture
def shared_data_dir() -> Path:
    """The canonical SPY 2017 split, or a skip when ../shared/data is absent."""
    if not (DATA_DIR / "test.csv.gz").exists():
        pytest.skip(f"canonical data set not found at {DATA_DIR} (it lives outside the repo)")
    return DATA_DIR


@pytest.fixture
def samples_dir() -> Path:
    """The saved StockTwits API responses, or a skip when ../shared is absent."""
    if not SAMPLES_DIR.is_dir():
        pytest.skip(
            f"StockTwits API samples not found at {SAMPLES_DIR} (they live outside the repo)"
        )
    return SAMPLES_DIR
