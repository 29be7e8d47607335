"""The classifier's defaults (batch size and wait, TensorFlow threads and model workers) are
the ones the benchmark chose."""

from __future__ import annotations

import json
from pathlib import Path

from stream import settings

LATEST = Path(__file__).resolve().parent.parent / "bench" / "results" / "latest.json"
# the benchmark's choice -> the default in stream/settings.py, and the classifier option
CHOSEN = {
    "chosen_batch_size": ("DEFAULT_BATCH_SIZE", "--batch-size"),
    "chosen_batch_wait_ms": ("DEFAULT_BATCH_WAIT_MS", "--batch-wait-ms"),
    "chosen_inference_threads": ("DEFAULT_INFERENCE_THREADS", "--inference-threads"),
    "chosen_inference_workers": ("DEFAULT_INFERENCE_WORKERS", "--inference-workers"),
}


def test_defaults_are_the_benchmarks_choice() -> None:
    result = json.loads(LATEST.read_text(encoding="utf-8"))
    differ = {
        default: (getattr(settings, default), result[key])
        for key, (default, _) in CHOSEN.items()
        if getattr(settings, default) != result[key]
    }
    assert not differ, (
        f"stream/settings.py defaults differ from the benchmark's choice in {LATEST.name} "
        f"(default, chosen): {differ}; set them to it"
    )


def test_the_benchmark_ran_the_classifier_with_its_choice() -> None:
    result = json.loads(LATEST.read_text(encoding="utf-8"))
    args = result["classifier_args"]
    for key, (_, option) in CHOSEN.items():
        assert f"{option}={result[key]}" in args
