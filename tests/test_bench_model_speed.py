"""The model-speed measures the benchmark reports, on a tiny network (quick)."""

from __future__ import annotations

import pytest

from bench.model_speed import measure_keras_naive

VOCABULARY = ["", "[OOV]", "_ticker_", "moon", "puts", "calls"]
MESSAGES = ["$SPY to the moon", "puts puts", "calls 🚀 soooo", "&amp; !!"]


def assert_rate_matches_time_per_call(out: dict[str, float], messages_per_call: int) -> None:
    """`messages_per_s` (rounded to 0.1) agrees with `ms_per_call` (rounded to 0.001) within
    what the two roundings allow, however slow the machine: unrounded, the rate is exactly
    messages_per_call * 1000 / ms_per_call."""
    ms, rate = out["ms_per_call"], out["messages_per_s"]
    fastest = messages_per_call * 1000 / (ms - 0.0005) + 0.05
    slowest = messages_per_call * 1000 / (ms + 0.0005) - 0.05
    assert slowest - 1e-9 <= rate <= fastest + 1e-9, (rate, ms)


@pytest.mark.tensorflow
@pytest.mark.parametrize("subword_buckets", [0, 16])
def test_keras_naive_calls_the_network_once_per_message(subword_buckets: int) -> None:
    from model.network import NetworkConfig

    config = NetworkConfig(
        embedding_dim=8, lstm_units=(8, 4), subword_buckets=subword_buckets, subword_dim=4
    )
    out = measure_keras_naive(config.to_dict(), VOCABULARY, MESSAGES, seconds=0.2)
    assert out["batch_size"] == 1
    assert out["calls"] >= 1
    assert_rate_matches_time_per_call(out, messages_per_call=1)


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
    assert_rate_matches_time_per_call(out, messages_per_call=2 * 4)


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


def test_a_slow_machines_rounded_rate_is_within_the_rounding() -> None:
    # a busy machine once gave 2.1 msgs/s at 483.092 ms a call: 2.07 unrounded, 1.4% off
    assert_rate_matches_time_per_call({"messages_per_s": 2.1, "ms_per_call": 483.092}, 1)
    with pytest.raises(AssertionError):
        assert_rate_matches_time_per_call({"messages_per_s": 2.2, "ms_per_call": 483.092}, 1)
