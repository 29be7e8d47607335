"""/healthz and /readyz tell the truth: a stalled loop is unhealthy, an idle one is not, a
failing consumer is not ready; the shutdown watchdog bounds a stop."""

from __future__ import annotations

import threading

from kafka.errors import KafkaConnectionError

from stream.liveness import EXIT_CODE_SHUTDOWN_CUT, Liveness, ShutdownWatchdog


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_no_progress_for_longer_than_the_limit_is_unhealthy_and_says_why() -> None:
    clock = Clock()
    liveness = Liveness(stall_timeout_s=30, clock=clock)
    clock.now += 29
    assert liveness.health() == (True, "ok")
    clock.now += 2
    alive, why = liveness.health()
    assert not alive and "no progress on waiting input for 31s" in why
    liveness.poll_failed(KafkaConnectionError("gone"))
    assert "polls failing: KafkaConnectionError" in liveness.health()[1]
    liveness.progressed()
    assert liveness.health() == (True, "ok")


def test_polls_failing_for_seconds_make_it_not_ready_and_a_good_poll_ready_again() -> None:
    clock = Clock()
    liveness = Liveness(clock=clock)
    liveness.poll_failed(KafkaConnectionError("gone"))
    clock.now += 1
    assert liveness.consuming() == (True, "")
    clock.now += 10
    ready, why = liveness.consuming()
    assert not ready and why.startswith("cannot consume: polls failing for 11s")
    liveness.polled()
    assert liveness.consuming() == (True, "")


def test_the_watchdog_exits_when_a_stop_overruns_its_bound() -> None:
    exited = threading.Event()
    codes: list[int] = []

    def fake_exit(code: int) -> None:
        codes.append(code)
        exited.set()

    ShutdownWatchdog(bound_s=0.05, exit=fake_exit).arm()
    assert exited.wait(5) and codes == [EXIT_CODE_SHUTDOWN_CUT]


def test_the_watchdog_lets_a_timely_stop_be_and_a_second_signal_exits_at_once() -> None:
    codes: list[int] = []
    watchdog = ShutdownWatchdog(bound_s=0.2, exit=codes.append)
    watchdog.arm()
    watchdog.disarm()
    threading.Event().wait(0.4)
    assert codes == []
    watchdog.arm()  # a second signal
    assert codes == [EXIT_CODE_SHUTDOWN_CUT]
