"""`stocksent classify` as an operator runs it, wedged on purpose: /healthz stays 200 while
idle, turns 503 when the loop makes no progress on waiting input, and SIGTERM still ends the
process within the shutdown bound."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from stream.liveness import EXIT_CODE_SHUTDOWN_CUT, SHUTDOWN_BOUND_S
from tests.classifier_support import (
    HANG_TEXT,
    HANGING_MODEL_SPEC,
    ClassifierProcess,
    InputMessage,
    input_records,
    records_in,
)
from tests.kafka_support import produce
from tests.polling import wait_for

pytestmark = pytest.mark.integration

STALL_TIMEOUT_S = 3


def test_healthz_tells_a_stuck_loop_from_an_idle_one_and_sigterm_ends_it_in_time(
    kafka_bootstrap: str, make_topic: Callable[..., str], group_id: str, tmp_path: Path
) -> None:
    input_topic, output_topic, dlq_topic = make_topic("in", 2), make_topic("out", 2), make_topic()
    args = [
        "--input-topic", input_topic, "--output-topic", output_topic, "--dlq-topic", dlq_topic,
        "--group-id", group_id, "--model", HANGING_MODEL_SPEC,
        "--stall-timeout-s", str(STALL_TIMEOUT_S), "--batch-wait-ms", "0",
    ]  # fmt: skip
    service = ClassifierProcess(kafka_bootstrap, args, tmp_path / "classify.log")
    try:
        service.wait_ready(timeout=60)
        produce(kafka_bootstrap, input_topic, input_records(
            InputMessage(10 + i, f"$SPY calls {i}", "bullish") for i in range(20)
        ))  # fmt: skip
        wait_for(lambda: records_in(kafka_bootstrap, output_topic) == 20, 30, "20 outputs")
        time.sleep(STALL_TIMEOUT_S + 2)  # idle for longer than the limit: not stuck
        assert service.get("/healthz") == (200, "ok\n")

        wedged_at = time.monotonic()  # the loop made progress (idle) until about now
        produce(kafka_bootstrap, input_topic, input_records(
            [InputMessage(99, f"$SPY {HANG_TEXT}", "bullish")]
            + [InputMessage(100 + i, f"$SPY puts {i}", "bearish") for i in range(10)]
        ))  # fmt: skip
        wait_for(lambda: service.get("/healthz")[0] == 503, STALL_TIMEOUT_S + 10, "503")
        unhealthy_after = time.monotonic() - wedged_at
        status, why = service.get("/healthz")
        assert status == 503 and "stuck: no progress on waiting input" in why
        assert unhealthy_after >= STALL_TIMEOUT_S - 0.5

        started = time.monotonic()
        code = service.terminate(timeout=SHUTDOWN_BOUND_S + 10)
        stopped_in = time.monotonic() - started
    finally:
        service.terminate()
    print(f"\nunhealthy {unhealthy_after:.1f}s after the wedge; SIGTERM to exit {stopped_in:.1f}s")
    assert code == EXIT_CODE_SHUTDOWN_CUT, service.log()
    assert stopped_in <= SHUTDOWN_BOUND_S + 2
    assert "did not end within" in service.log()
