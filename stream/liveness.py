"""What `/healthz` and `/readyz` say, from what the loop reports, and a bound on shutdown.

Alive (`/healthz`) means the loop makes progress: it committed a batch, or it is idle with no
input waiting, within the last `stall_timeout_s`. A loop that spins on an error, hangs inside
a client or model call, or polls without getting the input the broker has for it, stops
reporting progress, and `/healthz` turns 503 naming for how long: it is stuck, and a restart
is what can help. A broker that cannot be reached is not the loop being stuck (a restart
would not help): that is `/readyz`'s 503, "cannot consume", while polls keep failing or no
broker connection is up.

A stop signal must end the process within `SHUTDOWN_BOUND_S` whatever the loop is doing: the
loop's retry pauses wait on the stop flag, and `ShutdownWatchdog` exits the process when the
graceful stop (finish the batch, commit, leave the group) has not ended by then.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from common.failures import ExitCode

log = logging.getLogger(__name__)

DEFAULT_STALL_TIMEOUT_S = 60.0
# polls failing for longer than this make the instance not ready ("cannot consume")
FAILING_POLLS_NOT_READY_S = 5.0
# SIGTERM to exit, at most: under `docker stop`'s and compose's grace periods (10 s default;
# 30 s in docker-compose.yml) and the test harness's 15 s.
SHUTDOWN_BOUND_S = 9.0
# the watchdog ended a stop that overran its bound
EXIT_CODE_SHUTDOWN_CUT = int(ExitCode.STOP_CUT_SHORT)


class Liveness:
    """The loop's progress and consumption state; read by the HTTP probes' thread."""

    def __init__(
        self,
        stall_timeout_s: float = DEFAULT_STALL_TIMEOUT_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stall_timeout_s = stall_timeout_s
        self._clock = clock
        self._last_progress = clock()
        self._failing_since: float | None = None
        self._last_error = ""

    def progressed(self) -> None:
        """The loop committed a batch, or is idle with no input waiting."""
        self._last_progress = self._clock()

    def polled(self) -> None:
        """A poll returned (records or none) without an error."""
        self._failing_since = None

    def poll_failed(self, error: BaseException) -> None:
        """A poll raised; the loop retries."""
        if self._failing_since is None:
            self._failing_since = self._clock()
        self._last_error = f"{type(error).__name__}: {error}"[:200]

    def health(self) -> tuple[bool, str]:
        """For /healthz: (alive, why)."""
        stalled = self._clock() - self._last_progress
        if stalled <= self.stall_timeout_s:
            return True, "ok"
        why = f"stuck: no progress on waiting input for {stalled:.0f}s"
        why += f" (limit {self.stall_timeout_s:g}s)"
        if self._failing_since is not None:
            why += f"; polls failing: {self._last_error}"
        return False, why

    def consuming(self) -> tuple[bool, str]:
        """For /readyz: (True, "") while polls succeed; (False, why) once they have been
        failing for `FAILING_POLLS_NOT_READY_S`."""
        since = self._failing_since
        if since is not None and self._clock() - since > FAILING_POLLS_NOT_READY_S:
            failing = self._clock() - since
            return False, f"cannot consume: polls failing for {failing:.0f}s ({self._last_error})"
        return True, ""


def broker_connected(client: Any) -> bool | None:
    """Whether a Kafka client (consumer or producer) has a live connection to any broker;
    None when it cannot tell (the client's internals changed)."""
    try:
        net = client._client
        nodes = [_node_id(broker) for broker in net.cluster.brokers()]
        return any(net.connected(node) for node in nodes)
    except Exception:
        return None


def _node_id(broker: Any) -> Any:
    node = getattr(broker, "node_id", None)  # kafka-python 3; 2.x named it nodeId
    return broker.nodeId if node is None else node


class ShutdownWatchdog:
    """Exits the process if a graceful stop takes longer than `bound_s` (a loop wedged in a
    client or model call never gets to its stop flag). A second signal exits at once."""

    def __init__(
        self, bound_s: float = SHUTDOWN_BOUND_S, exit: Callable[[int], Any] = os._exit
    ) -> None:
        self.bound_s = bound_s
        self._exit = exit
        self._armed = threading.Event()
        self._done = threading.Event()

    def arm(self) -> None:
        """Called on a stop signal: the first starts the clock, a second one exits now."""
        if self._armed.is_set():
            log.warning("second stop signal: exiting now")
            self._exit(EXIT_CODE_SHUTDOWN_CUT)
            return
        self._armed.set()
        threading.Thread(target=self._watch, name="shutdown-watchdog", daemon=True).start()

    def disarm(self) -> None:
        """The graceful stop finished."""
        self._done.set()

    def _watch(self) -> None:
        if self._done.wait(self.bound_s):
            return
        log.error(
            "the graceful stop did not end within %.0fs; exiting now (uncommitted records "
            "are read again by the next owner of their partitions)",
            self.bound_s,
        )
        logging.shutdown()
        self._exit(EXIT_CODE_SHUTDOWN_CUT)
