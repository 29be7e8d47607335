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


def test_throughput_with_two_callers_calls_at_once_and_counts_every_call() -> None:
    import threading
    import time

    from bench.model_speed import measure_throughput

    lock = threading.Lock()
    running, most = 0, 0

    def predict(batch: list[str]) -> None:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.01)  # releases the GIL, as a TensorFlow call does
        with lock:
            running -= 1

    out = measure_throughput(predict, [["a"] * 4, ["b"] * 4], 4, seconds=0.2, callers=2)
    assert most == 2 and out["callers"] == 2
    # every call of both threads is counted: ~2 calls per 10 ms at once, none lost
    assert out["calls"] >= 20
    # each caller makes a call every ms_per_call: two callers of batches of 4
    assert out["messages_per_s"] == pytest.approx(2 * 4 * 1000 / out["ms_per_call"], rel=0.01)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--callers", "2"], "--callers: only with --signature-only"),
        (["--callers", "0", "--signature-only"], "--callers: 0 is not a number of threads"),
    ],
)
def test_callers_are_checked_before_anything_is_measured(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from bench.model_speed import main

    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2 and message in capsys.readouterr().err
