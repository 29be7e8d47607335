"""The classifier's default batch size and wait are the ones the benchmark chose."""

from __future__ import annotations

import json
from pathlib import Path

from stream import settings

LATEST = Path(__file__).resolve().parent.parent / "bench" / "results" / "latest.json"


def test_defaults_are_the_batching_the_benchmark_chose() -> None:
    result = json.loads(LATEST.read_text(encoding="utf-8"))
    chosen = (result["chosen_batch_size"], result["chosen_batch_wait_ms"])
    defaults = (settings.DEFAULT_BATCH_SIZE, settings.DEFAULT_BATCH_WAIT_MS)
    assert defaults == chosen, (
        f"stream/settings.py defaults {defaults} differ from the benchmark's choice {chosen} "
        f"in {LATEST.name}: set DEFAULT_BATCH_SIZE / DEFAULT_BATCH_WAIT_MS to it"
    )


def test_default_inference_threads_and_workers_are_the_benchmarks_choice() -> None:
    result = json.loads(LATEST.read_text(encoding="utf-8"))
    chosen = (result["chosen_inference_threads"], result["chosen_inference_workers"])
    defaults = (settings.DEFAULT_INFERENCE_THREADS, settings.DEFAULT_INFERENCE_WORKERS)
    assert defaults == chosen, (
        f"stream/settings.py DEFAULT_INFERENCE_THREADS / DEFAULT_INFERENCE_WORKERS {defaults} "
        f"differ from the benchmark's choice {chosen} in {LATEST.name}"
    )


def test_the_benchmark_ran_the_classifier_with_its_choice() -> None:
    result = json.loads(LATEST.read_text(encoding="utf-8"))
    args = result["classifier_args"]
    assert f"--batch-size={result['chosen_batch_size']}" in args
    assert f"--batch-wait-ms={result['chosen_batch_wait_ms']}" in args
    assert f"--inference-threads={result['chosen_inference_threads']}" in args
    assert f"--inference-workers={result['chosen_inference_workers']}" in args
