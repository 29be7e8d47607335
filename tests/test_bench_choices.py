"""bench.run's choices: the rules that set the classifier's defaults (pure logic, no Kafka)."""

from __future__ import annotations

from bench.run import pick_batching, pick_threads


def test_smallest_batch_within_tolerance_of_the_best_wins() -> None:
    chosen = pick_batching({64: 9_000.0, 256: 19_200.0, 1024: 20_000.0})
    assert chosen["chosen_batch_size"] == 256  # 4% below the best: as fast, scored sooner
    assert pick_batching({256: 15_000.0, 1024: 20_000.0})["chosen_batch_size"] == 1024


def test_one_inference_thread_wins_unless_the_whole_pool_is_clearly_faster() -> None:
    assert pick_threads({1: 20_000.0, 0: 20_500.0}, cores=2)["chosen_inference_threads"] == 1
    assert pick_threads({1: 15_000.0, 0: 20_000.0}, cores=2)["chosen_inference_threads"] == 0
    assert pick_threads({1: 20_000.0, 0: 12_000.0}, cores=2)["chosen_inference_threads"] == 1
    # on a one-core machine "one per core" is one thread too: the explicit 1 is preferred
    assert pick_threads({1: 10_000.0, 0: 10_000.0}, cores=1)["chosen_inference_threads"] == 1
