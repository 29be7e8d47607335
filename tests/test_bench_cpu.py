"""bench.cpu: CPU time by thread from /proc, and the figures the benchmark derives from it."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import pytest

from bench.constant_model import SPEC, predictor
from bench.cpu import CpuMeter, CpuSplit, process_cpu_seconds, thread_cpu_seconds
from bench.ratios import cpu_bound, ratios
from bench.run import markdown

linux_only = pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc")


def _fake_task(proc: Path, pid: int, tid: int, name: str, utime: int, stime: int) -> None:
    task = proc / str(pid) / "task" / str(tid)
    task.mkdir(parents=True)
    # stat(5): pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt
    # cmajflt utime stime ...
    fields = ["S", "1", "1", "1", "0", "-1", "0", "0", "0", "0", "0", str(utime), str(stime)]
    (task / "stat").write_text(f"{tid} ({name}) {' '.join(fields)} 0 0 20 0\n")


def test_threads_are_summed_by_name_even_when_the_name_holds_parentheses(
    tmp_path: Path,
) -> None:
    ticks = os.sysconf("SC_CLK_TCK")
    _fake_task(tmp_path, 7, 7, "python", utime=ticks, stime=ticks)
    _fake_task(tmp_path, 7, 8, "tf_Compute", utime=3 * ticks, stime=0)
    _fake_task(tmp_path, 7, 9, "tf_Compute", utime=ticks, stime=ticks)
    _fake_task(tmp_path, 7, 10, "odd) (name", utime=0, stime=ticks)
    seconds = thread_cpu_seconds(7, proc=tmp_path)
    assert seconds == {"python": 2.0, "tf_Compute": 5.0, "odd) (name": 1.0}
    assert thread_cpu_seconds(8, proc=tmp_path) == {}  # gone: nothing, no error
    assert process_cpu_seconds(8, proc=tmp_path) is None


@linux_only
def test_meter_counts_a_python_thread_even_after_it_ended() -> None:
    meter = CpuMeter(os.getpid(), broker_pid=os.getpid())

    def spin(seconds: float) -> None:
        end = time.process_time() + seconds
        while time.process_time() < end:
            pass

    worker = threading.Thread(target=spin, args=(0.3,))
    worker.start()
    worker.join()
    split = meter.split()
    # not a `tf_` thread: Python's share, although the thread is gone from /proc by now
    assert split.tensorflow_s == 0.0
    assert split.python_s >= 0.25
    assert split.broker_s is not None and split.broker_s >= 0.25  # the same process here


def test_meter_says_when_it_cannot_read_the_classifier() -> None:
    gone = 2**22 + 7  # above Linux's largest pid
    with pytest.raises(RuntimeError, match=str(gone)):
        CpuMeter(gone, broker_pid=None)


def test_per_message_figures_and_the_cpu_bound() -> None:
    split = CpuSplit(tensorflow_s=1.6, python_s=1.2, broker_s=0.2)
    per_message = split.per_message_us(50_000)
    assert per_message == {
        "classifier_tensorflow": 32.0,
        "classifier_python": 24.0,
        "broker": 4.0,
    }
    assert split.total_s == pytest.approx(3.0)
    # the CPU of a message on 2 cores: at best 2 / (its seconds) messages a second
    assert cpu_bound(per_message, cores=2) == pytest.approx(2 / (sum(per_message.values()) * 1e-6))
    no_broker = CpuSplit(1.0, 1.0, None).per_message_us(10)
    assert "broker" not in no_broker


def test_constant_stand_in_scores_any_batch_without_a_model() -> None:
    stand_in = predictor()
    scores = stand_in.predict(["a", "", "$SPY to the moon"])
    assert scores.dtype.name == "float32" and list(scores) == [0.5, 0.5, 0.5]
    assert len(stand_in.predict([])) == 0
    _, module, attribute = SPEC.split(":")
    assert getattr(sys.modules[module], attribute) is predictor


def test_table_shows_the_kafka_path_and_cpu_rows() -> None:
    result = {
        "machine": {"cpu_model": "Test CPU", "cores": 2, "tensorflow": "x", "kafka_python": "y"},
        "finished_at": "2026-11-30 02:00 UTC",
        "kafka_version": "4.1.1",
        "model_version": "abc",
        "classifier_args": [],
        "model_ceiling_batch_size": 2048,
        "model_ceiling_msgs_per_s": 60_000.0,
        "model_ceiling_how": "one call per core at once, one thread each",
        "model_single_call_msgs_per_s": 38_000.0,
        "model_by_batch": {"1": 800.0, "2048": 38_000.0},
        "model_one_thread_msgs_per_s": 31_000.0,
        "model_concurrent_msgs_per_s": 60_000.0,
        "model_concurrent_calls": 2,
        "naive_msgs_per_s": 22.0,
        "naive_exported_msgs_per_s": 880.0,
        "seed_config_batch_size": 2048,
        "seed_config_msgs_per_s": 1_900.0,
        "pipeline_messages": 50_000,
        "pipeline_msgs_per_s": 26_900.0,
        "transport_msgs_per_s": 50_257.0,
        "pipeline_cpu_us_per_msg": {
            "classifier_tensorflow": 32.0,
            "classifier_python": 24.6,
            "broker": 3.6,
        },
        "pipeline_cores_busy": 1.62,
        "transport_cpu_us_per_msg": {"classifier_tensorflow": 0.0, "classifier_python": 18.6},
        "transport_cores_busy": 1.06,
        "latency_offered_msgs_per_s": 13_450.0,
        "latency_seconds": 60.0,
        "latency_p50_ms": 70.0,
        "latency_p95_ms": 120.0,
        "latency_p99_ms": 160.0,
        "latency_max_ms": 300.0,
        "chosen_inference_threads": 1,
        "chosen_inference_workers": 2,
        "inference_sweep_msgs_per_s": {"1 thread": 26_000.0, "2 calls x 1 thread": 26_900.0},
        "chosen_batch_size": 1024,
        "chosen_batch_wait_ms": 20,
        "rss_mb": 1000.0,
        "startup_s": 4.0,
    }
    result |= ratios(result)  # as `make bench` derives them: from the rates above
    table = markdown(result)
    assert "| Kafka path alone: the same drain, a constant stand-in for the model | 50,257" in table
    pipeline = result["pipeline_msgs_per_s"]
    assert f"| pipeline / Kafka path alone | {pipeline / 50_257.0:.2f} |" in table
    # the naive is Keras `predict` per message; the exported model's is reported too
    assert f"| pipeline / naive (Keras `predict`) | {pipeline / 22.0:,.0f}x |" in table
    assert f"| pipeline / naive, stricter (exported model) | {pipeline / 880.0:,.0f}x |" in table
    assert f"| pipeline / ceiling | {pipeline / 60_000.0:.2f} |" in table
    assert (
        "TensorFlow threads / Python threads (loop, kafka-python) / broker | 32 / 25 / 4 µs; "
        "1.62 of 2 cores busy |"
    ) in table
    bound = 2 * 1e6 / (32.0 + 24.6 + 3.6)  # 2 cores, the pipeline's CPU per message
    assert f"{bound:,.0f} msgs/s = {bound / 60_000.0:.2f} of the ceiling" in table
    # the ceiling names the way it was measured; every way has its row
    assert (
        "the fastest of the ways below (one call per core at once, one thread each) | 60,000"
        in table
    )
    assert "| model, 2 calls at once on one TensorFlow thread each, batch 2048 | 60,000" in table
    assert "| model, one call at a time on one TensorFlow thread, batch 2048 | 31,000" in table
    assert (
        "| like for like: one call at a time on every core / seed configuration | "
        f"{38_000.0 / 1_900.0:.1f}x |" in table
    )
    assert (
        "(drain msgs/s, best of 2: 1 thread: 26,000, 2 calls x 1 thread: 26,900) | 2 calls x 1 thread |"
        in table
    )
    del result["pipeline_cpu_us_per_msg"]["broker"]  # an external broker: CPU not metered
    del result["pipeline_cpu_bound_msgs_per_s"], result["cpu_bound_vs_ceiling"]
    assert "bound by CPU" not in markdown(result | ratios(result))
