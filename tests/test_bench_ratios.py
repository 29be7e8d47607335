"""bench.ratios: the ratios the benchmark reports, each checked against the quotient of the
rates it names, computed here from the same inputs."""

from __future__ import annotations

from typing import Any

import pytest

from bench.ratios import cpu_bound, ratios

RATES = {
    "pipeline_msgs_per_s": 26_900.0,
    "model_ceiling_msgs_per_s": 60_000.0,
    "model_one_thread_msgs_per_s": 31_000.0,
    "model_single_call_msgs_per_s": 38_000.0,
    "naive_msgs_per_s": 22.0,
    "naive_exported_msgs_per_s": 880.0,
    "transport_msgs_per_s": 50_257.0,
    "seed_config_msgs_per_s": 1_900.0,
}
CPU_US_PER_MSG = {"classifier_tensorflow": 32.0, "classifier_python": 24.6, "broker": 3.6}
CORES = 2


def bench_result(**changes: Any) -> dict[str, Any]:
    return {
        **RATES,
        "machine": {"cores": CORES},
        "pipeline_cpu_us_per_msg": dict(CPU_US_PER_MSG),
        **changes,
    }


def kept(decimals: int) -> float:
    """The largest error that rounding to `decimals` may add."""
    return 0.5 * 10**-decimals


@pytest.mark.parametrize(
    "changes",
    [{}, {"pipeline_msgs_per_s": 13_450.0}, {"model_ceiling_msgs_per_s": 26_900.0}],
    ids=["as measured", "half the drain", "ceiling = drain"],
)
def test_each_ratio_is_the_quotient_of_its_rates(changes: dict[str, float]) -> None:
    result = bench_result(**changes)
    pipeline = result["pipeline_msgs_per_s"]
    ceiling = result["model_ceiling_msgs_per_s"]
    seed = result["seed_config_msgs_per_s"]
    expected = {
        "pipeline_vs_ceiling": (pipeline / ceiling, 3),
        "pipeline_vs_one_thread_model": (pipeline / result["model_one_thread_msgs_per_s"], 3),
        "pipeline_vs_naive": (pipeline / result["naive_msgs_per_s"], 1),
        "pipeline_vs_naive_exported": (pipeline / result["naive_exported_msgs_per_s"], 1),
        "pipeline_vs_transport": (pipeline / result["transport_msgs_per_s"], 3),
        "ceiling_vs_seed_config": (ceiling / seed, 2),
        "single_call_vs_seed_config": (result["model_single_call_msgs_per_s"] / seed, 2),
    }
    got = ratios(result)
    for name, (quotient, decimals) in expected.items():
        assert got[name] == pytest.approx(quotient, abs=kept(decimals)), name
        assert got[name] == round(got[name], decimals), f"{name} keeps {decimals} decimals"
    bound = CORES * 1e6 / sum(CPU_US_PER_MSG.values())
    assert got["pipeline_cpu_bound_msgs_per_s"] == pytest.approx(bound, abs=kept(1))
    assert got["cpu_bound_vs_ceiling"] == pytest.approx(bound / ceiling, abs=kept(3))
    assert set(got) == {*expected, "pipeline_cpu_bound_msgs_per_s", "cpu_bound_vs_ceiling"}


def test_the_cpu_bound_needs_the_brokers_cpu() -> None:
    # an external broker: its CPU is not metered, so no bound can be drawn
    unmetered = {k: v for k, v in CPU_US_PER_MSG.items() if k != "broker"}
    got = ratios(bench_result(pipeline_cpu_us_per_msg=unmetered))
    assert "pipeline_cpu_bound_msgs_per_s" not in got and "cpu_bound_vs_ceiling" not in got


def test_the_cpu_bound_is_every_core_busy_on_the_cpu_each_message_costs() -> None:
    per_message = {"classifier_tensorflow": 40.0, "classifier_python": 15.0, "broker": 5.0}
    total_us = sum(per_message.values())
    for cores in (1, 2, 8):
        assert cpu_bound(per_message, cores) == pytest.approx(cores / (total_us * 1e-6))


def test_the_aggregator_is_compared_with_the_pipeline_drain_of_the_same_run() -> None:
    got = ratios(bench_result(aggregate_msgs_per_s=55_000.0))
    assert got["aggregate_vs_pipeline"] == pytest.approx(55_000 / 26_900, abs=kept(2))
    assert "aggregate_vs_pipeline" not in ratios(bench_result())
