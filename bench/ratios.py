"""The ratios the benchmark reports, derived from the rates it measured: one place for the
arithmetic, so the report (`bench.run.markdown`) and the tests read the same figures."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# ratio name -> (numerator, denominator, decimals kept): keys of the benchmark's result
RATE_RATIOS: dict[str, tuple[str, str, int]] = {
    "pipeline_vs_ceiling": ("pipeline_msgs_per_s", "model_ceiling_msgs_per_s", 3),
    "pipeline_vs_one_thread_model": ("pipeline_msgs_per_s", "model_one_thread_msgs_per_s", 3),
    "pipeline_vs_naive": ("pipeline_msgs_per_s", "naive_msgs_per_s", 1),
    "pipeline_vs_naive_exported": ("pipeline_msgs_per_s", "naive_exported_msgs_per_s", 1),
    "pipeline_vs_transport": ("pipeline_msgs_per_s", "transport_msgs_per_s", 3),
    "ceiling_vs_seed_config": ("model_ceiling_msgs_per_s", "seed_config_msgs_per_s", 2),
    # like for like: the seed configuration is measured one call at a time on every core
    "single_call_vs_seed_config": ("model_single_call_msgs_per_s", "seed_config_msgs_per_s", 2),
}


# measured only when the run has it: the aggregator's drain against the classifier's, both
# from the same run (issue #21: the aggregator must drain at least twice as fast)
AGGREGATE_RATIO = ("aggregate_vs_pipeline", "aggregate_msgs_per_s", "pipeline_msgs_per_s", 2)
AGGREGATE_REQUIRED = 2.0


def cpu_bound(cpu_us_per_msg: Mapping[str, float], cores: int) -> float:
    """The drain rate if every core were busy all the time on this CPU per message: no
    design of the loop on this machine can go faster without cutting the work itself."""
    return cores * 1e6 / sum(cpu_us_per_msg.values())


def ratios(result: Mapping[str, Any]) -> dict[str, float]:
    """Every ratio of `RATE_RATIOS`, rounded as reported, from a result's measured rates;
    with a local broker (all CPU metered: a `broker` part in `pipeline_cpu_us_per_msg`),
    also the drain rate bound by CPU and its ratio to the ceiling."""
    derived = {
        name: round(result[numerator] / result[denominator], decimals)
        for name, (numerator, denominator, decimals) in RATE_RATIOS.items()
    }
    name, numerator, denominator, decimals = AGGREGATE_RATIO
    if numerator in result:
        derived[name] = round(result[numerator] / result[denominator], decimals)
    if "broker" in result["pipeline_cpu_us_per_msg"]:
        bound = cpu_bound(result["pipeline_cpu_us_per_msg"], result["machine"]["cores"])
        derived["pipeline_cpu_bound_msgs_per_s"] = round(bound, 1)
        derived["cpu_bound_vs_ceiling"] = round(bound / result["model_ceiling_msgs_per_s"], 3)
    return derived
