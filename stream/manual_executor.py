"""An executor whose calls complete when a test says so: the model calls of the classifier's
unit tests, scored in an order the test chooses, without sleeping.

A submitted call waits until `complete()` runs it (on the caller's thread). When the loop
itself waits for a call that was not completed (`Future.result()`, its backpressure), the
call runs then, as a worker would have finished it, and `waited` counts it.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


class HeldCall(Future[T]):
    """A call submitted to a `ManualExecutor`, not run until completed or waited for."""

    def __init__(self, executor: ManualExecutor, call: Callable[[], T]) -> None:
        super().__init__()
        self._executor = executor
        self._call = call

    def run(self) -> None:
        """Runs the call now (once), setting its result or exception."""
        if self.done() or not self.set_running_or_notify_cancel():
            return
        self._executor.held.remove(self)
        try:
            result = self._call()
        except BaseException as err:
            self.set_exception(err)
        else:
            self.set_result(result)

    def result(self, timeout: float | None = None) -> T:
        """The call's result; a call not completed yet is run now (the loop waited)."""
        if not self.done():
            self._executor.waited += 1
            self.run()
        return super().result(timeout)


class ManualExecutor(Executor):
    """Holds every submitted call until `complete()`; see the module docstring."""

    def __init__(self) -> None:
        self.held: list[HeldCall[Any]] = []  # submitted, not run, oldest first
        self.waited = 0  # calls the loop had to wait for
        self.submitted = 0

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        """Holds the call."""
        call: HeldCall[T] = HeldCall(self, lambda: fn(*args, **kwargs))
        self.held.append(call)
        self.submitted += 1
        return call

    def complete(self, index: int = 0) -> None:
        """Runs the held call at `index` (0: the oldest)."""
        self.held[index].run()

    def complete_all(self) -> None:
        """Runs every held call, oldest first."""
        while self.held:
            self.held[0].run()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Cancels what is still held when asked to."""
        if cancel_futures:
            for call in list(self.held):
                call.cancel()
            self.held.clear()
