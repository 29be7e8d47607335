"""bench.run's choices: the rules that set the classifier's defaults (pure logic, no Kafka)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from bench.run import (
    inference_candidates,
    inference_label,
    inference_options,
    measure_rounds,
    pick_batching,
    pick_inference,
    pick_wait,
)


def test_smallest_batch_within_tolerance_of_the_best_wins() -> None:
    chosen = pick_batching({64: 9_000.0, 256: 19_200.0, 1024: 20_000.0})
    assert chosen["chosen_batch_size"] == 256  # 4% below the best: as fast, scored sooner
    assert pick_batching({256: 15_000.0, 1024: 20_000.0})["chosen_batch_size"] == 1024


def test_one_thread_one_call_wins_unless_another_way_is_clearly_faster() -> None:
    def chosen(rates: dict[tuple[int, int], float], cores: int = 2) -> tuple[int, int]:
        picked = pick_inference(rates, cores)
        return picked["chosen_inference_threads"], picked["chosen_inference_workers"]

    one, pool, two_calls = (1, 1), (0, 1), (1, 2)
    assert chosen({one: 20_000.0, pool: 20_500.0, two_calls: 20_900.0}) == one
    assert chosen({one: 15_000.0, pool: 20_000.0, two_calls: 16_000.0}) == pool
    assert chosen({one: 15_000.0, pool: 16_000.0, two_calls: 20_000.0}) == two_calls
    # as many threads in all, within tolerance: explicit threads before TensorFlow's default
    assert chosen({one: 15_000.0, pool: 20_000.0, two_calls: 19_500.0}) == two_calls
    # on a one-core machine "one per core" is one thread too: the explicit 1 is preferred
    assert chosen({one: 10_000.0, pool: 10_000.0}, cores=1) == one


def test_the_inference_sweep_tries_one_call_per_core_on_machines_with_more() -> None:
    assert inference_candidates(1) == [(1, 1), (0, 1)]
    assert inference_candidates(4) == [(1, 1), (0, 1), (1, 4)]
    assert inference_options((1, 4)) == ["--inference-threads=1", "--inference-workers=4"]
    labels = [inference_label(i) for i in [(1, 1), (0, 1), (1, 2), (2, 3)]]
    assert labels == ["1 thread", "one per core", "2 calls x 1 thread", "3 calls x 2 threads"]


def test_sweeps_measure_round_robin_and_keep_each_candidates_best() -> None:
    from bench.run import measure_rounds

    order: list[str] = []
    readings = iter([5.0, 9.0, 7.0, 3.0, 1.0, 8.0])

    def measure(candidate: str) -> float:
        order.append(candidate)
        return next(readings)

    best, runs = measure_rounds(["a", "b", "c"], measure, max, rounds=2)
    assert order == ["a", "b", "c", "a", "b", "c"]
    assert runs == {"a": [5.0, 3.0], "b": [9.0, 1.0], "c": [7.0, 8.0]}
    assert best == {"a": 5.0, "b": 9.0, "c": 8.0}
    lowest, _ = measure_rounds(["x"], lambda _: 2.0, min, rounds=3)
    assert lowest == {"x": 2.0}


def test_the_default_wait_changes_only_when_another_is_clearly_faster() -> None:
    # the 02:30 run's p99 by wait, with 5 ms the default: 38% above the lowest -> 10 ms wins
    measured = {2: 162.0, 5: 174.0, 10: 126.0, 20: 143.0, 50: 150.0}
    assert pick_wait(measured, current_ms=5) == 10
    # the 02:04 run's, with 20 ms the default: 10% above the lowest (5 ms) -> 20 ms stays
    earlier = {2: 211.0, 5: 145.0, 10: 199.0, 20: 159.0, 50: 243.0}
    assert pick_wait(earlier, current_ms=20) == 20
    # a default that was not measured cannot be compared: the shortest as fast as the lowest
    assert pick_wait({5: 100.0, 10: 100.0, 20: 180.0}, current_ms=7) == 5


def test_of_the_waits_as_fast_as_the_lowest_the_shortest_wins() -> None:
    # the 06:52 run's medians, with 10 ms the default (28% above the lowest, 50 ms): 5, 20
    # and 50 ms are within 15% of it, and 5 ms adds the least latency to a quiet stream
    measured = {2: 398.0, 5: 219.0, 10: 261.0, 20: 215.0, 50: 204.0}
    assert pick_wait(measured, current_ms=10) == 5
    assert pick_wait(measured, current_ms=20) == 20  # a default as fast as the lowest stays
    assert pick_wait({2: 300.0, 5: 100.0, 10: 114.0}, current_ms=50) == 5


def test_the_wait_sweep_keeps_each_waits_median_of_three_rounds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from bench import pipeline, run

    drain = SimpleNamespace(
        topic_in="in", topic_out="out", classifier=SimpleNamespace(terminate=lambda: 0)
    )
    p99s = iter([500.0, 150.0, 100.0, 160.0, 400.0, 140.0])  # round-robin: 2, 5, 2, 5, 2, 5
    monkeypatch.setattr(run, "_drain", lambda *a, **k: drain)
    monkeypatch.setattr(
        pipeline, "offered_load_latency", lambda *a, **k: {"latency_p99_ms": next(p99s)}
    )
    chosen = run.choose_wait("b", [{}] * 2000, [], Path("."), 1024, 100.0, 20, waits=(2, 5))
    assert chosen["wait_sweep_runs_p99_ms"] == {
        "2": [500.0, 100.0, 400.0],
        "5": [150.0, 160.0, 140.0],
    }
    # one lucky round (100 ms) would have made 2 ms the best; the medians say 5 ms
    assert chosen["wait_sweep_p99_ms"] == {"2": 400.0, "5": 150.0}
    assert chosen["chosen_batch_wait_ms"] == 5


def test_the_ceiling_keeps_each_batch_sizes_fastest_round() -> None:
    # a slow spell in one round must not lower the ceiling the pipeline is compared with
    # (bench.run.model_figures measures it with measure_rounds, keeping the max)
    first = {256: 24_000.0, 2048: 29_375.0}
    second = {256: 21_000.0, 2048: 36_000.0}
    rounds = iter([first, second])
    current: dict[int, float] = {}

    def measure(batch_size: int) -> float:
        nonlocal current
        if batch_size == 256:  # the first candidate starts a round
            current = next(rounds)
        return current[batch_size]

    best, _ = measure_rounds((256, 2048), measure, max, rounds=2)
    assert sorted(best.items()) == [
        (256, 24_000.0),
        (2048, 36_000.0),
    ]
