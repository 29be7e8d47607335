"""The machine: what a figure was measured on (model card, benchmarks), and how many of its
threads TensorFlow may use (training, the classifier, the benchmarks)."""

from __future__ import annotations

import platform
from pathlib import Path


def cpu_model() -> str:
    """CPU model name from /proc/cpuinfo (or the platform's guess)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def limit_tensorflow_threads(threads: int) -> None:
    """Caps TensorFlow's intra-op and inter-op pools at `threads` (0: TensorFlow's default,
    one per core). Must run before TensorFlow runs any op (it raises RuntimeError after); a
    no-op when the pools already have this size."""
    if threads <= 0:
        return
    import tensorflow as tf

    threading = tf.config.threading
    if (
        threading.get_intra_op_parallelism_threads() == threads
        and threading.get_inter_op_parallelism_threads() == threads
    ):
        return
    threading.set_intra_op_parallelism_threads(threads)
    threading.set_inter_op_parallelism_threads(threads)
