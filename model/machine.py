"""The machine: what a figure was measured on (model card, benchmarks), and how many of its
threads TensorFlow may use (training, the classifier, the benchmarks)."""

from __future__ import annotations

import os
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


def machine_description() -> str:
    """The CPU model and core count, as manifests and benchmark results record them."""
    return f"{cpu_model()}, {os.cpu_count()} cores"


def limit_tensorflow_threads(threads: int, concurrent_calls: int = 1) -> None:
    """Caps TensorFlow's pools for `concurrent_calls` model calls at once with `threads`
    each: `threads` intra-op, `threads` x `concurrent_calls` inter-op (with one inter-op
    thread, concurrent calls run one after another). 0 threads: TensorFlow's defaults, one
    per core. Must run before TensorFlow runs any op (it raises RuntimeError after); a no-op
    when the pools already have these sizes."""
    if threads <= 0:
        return
    import tensorflow as tf

    threading = tf.config.threading
    inter = threads * max(1, concurrent_calls)
    if (
        threading.get_intra_op_parallelism_threads() == threads
        and threading.get_inter_op_parallelism_threads() == inter
    ):
        return
    threading.set_intra_op_parallelism_threads(threads)
    threading.set_inter_op_parallelism_threads(inter)
