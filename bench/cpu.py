"""CPU time of running processes, read from Linux's /proc: where a drain's cores went.

The classifier's threads are told apart by name: TensorFlow names its pool threads `tf_*`;
every other thread (the loop, kafka-python's network threads, the metrics server) is Python.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

TENSORFLOW_THREAD_PREFIX = "tf_"
_TICKS_PER_S = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat(path: Path) -> tuple[str, float] | None:
    """(name, user + system CPU seconds) from a stat(5) file; None when it is gone."""
    try:
        stat = path.read_text()
    except OSError:
        return None
    name = stat[stat.index("(") + 1 : stat.rindex(")")]
    fields = stat[stat.rindex(")") + 2 :].split()
    # fields 14 and 15 of stat(5) (utime, stime), counted here from the state field (3)
    return name, (int(fields[11]) + int(fields[12])) / _TICKS_PER_S


def process_cpu_seconds(pid: int, proc: Path = Path("/proc")) -> float | None:
    """User + system CPU seconds of the whole process, ended threads included."""
    stat = _stat(proc / str(pid) / "stat")
    return None if stat is None else stat[1]


def thread_cpu_seconds(pid: int, proc: Path = Path("/proc")) -> dict[str, float]:
    """User + system CPU seconds of each of the process's live threads, summed by thread
    name; empty when the process (or /proc) is not there."""
    by_name: dict[str, float] = {}
    try:
        tasks = list((proc / str(pid) / "task").iterdir())
    except OSError:
        return by_name
    for task in tasks:
        stat = _stat(task / "stat")
        if stat is not None:  # else the thread ended meanwhile
            by_name[stat[0]] = by_name.get(stat[0], 0.0) + stat[1]
    return by_name


@dataclass(frozen=True)
class CpuSplit:
    """CPU seconds spent during one measured interval."""

    tensorflow_s: float  # the classifier's TensorFlow threads
    python_s: float  # the classifier's other threads
    broker_s: float | None  # the Kafka broker (None when it is not a local process)

    def per_message_us(self, messages: int) -> dict[str, float]:
        """Microseconds of CPU per message, by part."""
        parts = {"classifier_tensorflow": self.tensorflow_s, "classifier_python": self.python_s}
        if self.broker_s is not None:
            parts["broker"] = self.broker_s
        return {k: round(1e6 * v / messages, 1) for k, v in parts.items()}

    @property
    def total_s(self) -> float:
        return self.tensorflow_s + self.python_s + (self.broker_s or 0.0)


class CpuMeter:
    """Snapshots the classifier's (and the broker's) CPU time; `split()` gives the CPU spent
    since the snapshot. TensorFlow's share is its pool threads' (which live as long as the
    process); the rest of the classifier's is Python's."""

    def __init__(self, classifier_pid: int, broker_pid: int | None) -> None:
        self.classifier_pid = classifier_pid
        self.broker_pid = broker_pid
        self._start = self._read()

    def _read(self) -> tuple[float, float, float | None]:
        total = process_cpu_seconds(self.classifier_pid)
        if total is None:  # as the peak RSS, these figures need Linux's /proc
            raise RuntimeError(f"cannot read the CPU time of process {self.classifier_pid}")
        threads = thread_cpu_seconds(self.classifier_pid)
        tensorflow = sum(s for n, s in threads.items() if n.startswith(TENSORFLOW_THREAD_PREFIX))
        broker = None if self.broker_pid is None else process_cpu_seconds(self.broker_pid)
        return total, tensorflow, broker

    def split(self) -> CpuSplit:
        (total_0, tensorflow_0, broker_0), (total_1, tensorflow_1, broker_1) = (
            self._start,
            self._read(),
        )
        tensorflow = tensorflow_1 - tensorflow_0
        broker = None if broker_0 is None or broker_1 is None else broker_1 - broker_0
        return CpuSplit(tensorflow, total_1 - total_0 - tensorflow, broker)
