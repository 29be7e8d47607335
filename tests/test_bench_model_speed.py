"""The model-speed measures the benchmark reports, on a tiny network (quick)."""

from __future__ import annotations

import pytest

from bench.model_speed import measure_keras_naive
from model.network import NetworkConfig

VOCABULARY = ["", "[OOV]", "_ticker_", "moon", "puts", "calls"]
MESSAGES = ["$SPY to the moon", "puts puts", "calls 🚀 soooo", "&amp; !!"]


@pytest.mark.parametrize("subword_buckets", [0, 16])
def test_keras_naive_calls_the_network_once_per_message(subword_buckets: int) -> None:
    config = NetworkConfig(
        embedding_dim=8, lstm_units=(8, 4), subword_buckets=subword_buckets, subword_dim=4
    )
    out = measure_keras_naive(config.to_dict(), VOCABULARY, MESSAGES, seconds=0.2)
    assert out["batch_size"] == 1
    assert out["calls"] >= 1
    assert out["messages_per_s"] == pytest.approx(1000 / out["ms_per_call"], rel=0.01)
