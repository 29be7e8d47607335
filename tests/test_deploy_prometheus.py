"""The Prometheus configs, alert rules and Grafana dashboard are valid for a real Prometheus.

promtool checks the configs and rules and runs the rules' unit tests; every PromQL expression
of the dashboard and the rules parses (promtool, offline) and evaluates without error on a real
Prometheus (loopback, temporary data dir); the dashboard covers the panels the run issue asks
for, with the metric names of docs/CONTRACTS.md and no other.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from common.options import from_arguments
from stream.aggregate.settings import AggregatorSettings
from tests.prometheus_support import (
    AGGREGATOR_JOB,
    ALERT_RULE_TESTS,
    ALERT_RULES,
    CLASSIFIER_JOB,
    COMPOSE_CONFIG,
    GRAFANA_DIR,
    INSTALL_SCRIPT,
    LEARNER_JOB,
    LOCAL_CONFIG,
    PRODUCER_JOB,
    PrometheusError,
    Query,
    RunningPrometheus,
    contract_metric_names,
    dashboard_panels,
    dashboard_queries,
    expand_grafana_variables,
    load_dashboard,
    load_yaml,
    metric_names,
    promtool,
    rule_queries,
    scrape_config,
    start_prometheus,
)

# What the run issue asks the dashboard to show -> the panel title that shows it.
REQUIRED_PANELS = {
    "input rate": "Input rate",
    "output rate": "Output rate",
    "DLQ by reason": "Dead letters by reason",
    "end-to-end latency percentiles": "End-to-end latency",
    "inference latency percentiles": "Inference latency",
    "batch size": "Batch size",
    "consumer lag per partition": "Consumer lag per partition",
    "share of bullish overall": "Share of bullish",
    "share of bullish per symbol": "Share of bullish per symbol",
    "agreement with authors' tags": "Agreement with authors' own tags",
    "producer request outcomes": "API requests by outcome",
    "producer budget": "Request budget left",
    "model version": "Model version",
    "live accuracy per model version": "Agreement with authors' own tags",
    "learner decisions (and annotations)": "Learner decisions",
    "candidate vs serving on the held-out slice": "Held-out accuracy: candidate vs serving",
    "bullish share over time of the top symbols by volume": (
        "Bullish share of the top symbols (60s windows)"
    ),
    "most bullish symbols in the last hour": "Most bullish symbols, last hour",
    "most bearish symbols in the last hour": "Most bearish symbols, last hour",
    "windows emitted (final and early)": "Windows emitted",
    "late records": "Late records",
    "open windows (state size)": "Open windows (state size)",
    "watermark lag": "Watermark lag",
    "aggregator dead letters and errors": "Aggregator dead letters and errors",
}

# What the run issue asks the alert rules to cover -> the alerts that do.
REQUIRED_ALERTS = {
    "lag growing for 5 minutes": {"StocksentConsumerLagGrowing"},
    "DLQ rate above a threshold": {"StocksentDeadLetterRateHigh"},
    "no input for 10 minutes": {"StocksentNoInput"},
    "producer blocked or rate-limited": {
        "StocksentProducerBlocked",
        "StocksentProducerRateLimited",
    },
    "classifier down": {"StocksentClassifierDown", "StocksentClassifierAbsent"},
    "live accuracy on tagged messages low for 1h": {"StocksentLiveAccuracyLow"},
    "bullish share 15 points from the prior for 6h": {"StocksentBullishShareDrift"},
    "learner without a decision for 2 x --every": {"StocksentLearnerSilent"},
    "aggregator down or not scraped": {"StocksentAggregatorDown", "StocksentAggregatorAbsent"},
    "aggregator watermark lag high": {"StocksentAggregatorWatermarkLagHigh"},
    "late records rising": {"StocksentAggregatorLateRecords"},
    "aggregator dead letters or errors rising": {
        "StocksentAggregatorDeadLetters",
        "StocksentAggregatorErrors",
    },
    "no windows emitted while input flows": {"StocksentAggregatorNoWindows"},
}
SEVERITIES = {"critical", "warning"}


def _ok(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, f"{result.args}:\n{result.stdout}\n{result.stderr}"


# ---- promtool --------------------------------------------------------------------------------


@pytest.mark.parametrize("config", [LOCAL_CONFIG, COMPOSE_CONFIG], ids=["local", "compose"])
def test_promtool_check_config(config: Path) -> None:
    _ok(promtool("check", "config", config))


def test_promtool_check_rules() -> None:
    _ok(promtool("check", "rules", ALERT_RULES))


def test_alert_rules_unit_tests_fire_and_stay_silent_as_specified() -> None:
    """deploy/prometheus/alerts_test.yml: each alert fires on its scenario, with its rendered
    annotations, and stays silent on the look-alike scenario."""
    _ok(promtool("test", "rules", ALERT_RULE_TESTS))


def test_generated_test_config_is_valid(tmp_path: Path) -> None:
    """The config tests/prometheus_support.py derives for a real server is a valid config."""
    config = scrape_config({CLASSIFIER_JOB: ["127.0.0.1:1"], PRODUCER_JOB: ["127.0.0.1:2"]})
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    _ok(promtool("check", "config", path))


def test_every_dashboard_expression_parses_offline(tmp_path: Path) -> None:
    """promtool parses each dashboard query (as Grafana expands it) as a recording rule."""
    queries = dashboard_queries()
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query_{i}", "expr": expand_grafana_variables(q.expr)}
                    for i, q in enumerate(queries)
                ],
            }
        ]
    }
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump(rules))
    _ok(promtool("check", "rules", path))


# ---- a real server ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def empty_prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPrometheus]:
    """A real Prometheus with the alert rules loaded and nothing to scrape but a closed port."""
    yield from start_prometheus(
        tmp_path_factory.mktemp("prometheus"), {CLASSIFIER_JOB: ["127.0.0.1:9"]}
    )


@pytest.mark.parametrize(
    "query", [*dashboard_queries(), *rule_queries()], ids=lambda q: q.where.replace(" ", "_")
)
def test_expression_evaluates_on_real_prometheus(
    empty_prometheus: RunningPrometheus, query: Query
) -> None:
    expr = expand_grafana_variables(query.expr)
    try:
        empty_prometheus.query(expr)
    except PrometheusError as err:
        pytest.fail(f"{query.where}: {err}\n{expr}")


def test_real_prometheus_loads_every_alert_rule(empty_prometheus: RunningPrometheus) -> None:
    loaded = {
        rule["name"] for group in empty_prometheus.api("rules")["groups"] for rule in group["rules"]
    }
    in_file = {q.where.removeprefix("rule ") for q in rule_queries()}
    assert loaded == in_file


# ---- the rules' content ----------------------------------------------------------------------


def test_alert_rules_cover_the_issue_and_are_annotated() -> None:
    every_rule = [rule for group in load_yaml(ALERT_RULES)["groups"] for rule in group["rules"]]
    rules = [rule for rule in every_rule if "alert" in rule]
    for recording in (rule for rule in every_rule if "record" in rule):
        # level:metric:operations, the Prometheus naming convention for recording rules
        assert recording["record"].count(":") == 2, recording["record"]
    names = {rule["alert"] for rule in rules}
    for concern, alerts in REQUIRED_ALERTS.items():
        assert alerts <= names, f"no alert for {concern!r}: want {sorted(alerts - names)}"
    for rule in rules:
        assert rule["labels"]["severity"] in SEVERITIES, rule["alert"]
        annotations = rule["annotations"]
        assert annotations.get("summary", "").strip(), f"{rule['alert']}: no summary"
        assert len(annotations.get("description", "")) > 40, f"{rule['alert']}: no description"
    durations = {r["alert"]: r.get("for") for r in rules}
    assert durations["StocksentLiveAccuracyLow"] == "1h"
    assert durations["StocksentBullishShareDrift"] == "6h"
    lag = next(r for r in rules if r["alert"] == "StocksentConsumerLagGrowing")
    assert lag["for"] == "5m"
    no_input = next(r for r in rules if r["alert"] == "StocksentNoInput")
    assert no_input["for"] == "10m"


# ---- the dashboard ---------------------------------------------------------------------------


def test_dashboard_has_the_required_panels() -> None:
    titles = {panel["title"] for panel in dashboard_panels()}
    missing = {need: title for need, title in REQUIRED_PANELS.items() if title not in titles}
    assert not missing, f"dashboard lacks panels: {missing}"


def test_dashboard_is_well_formed_for_provisioning() -> None:
    dashboard = load_dashboard()
    datasource = load_yaml(GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yml")
    uid = datasource["datasources"][0]["uid"]
    assert dashboard["uid"] and dashboard["title"]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in dashboard_panels(dashboard):
        where = panel["title"]
        assert panel["datasource"]["uid"] == uid, where
        assert panel.get("description"), f"{where}: no description"
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, f"{where}: wider than the grid"
        assert panel["targets"], f"{where}: no query"
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == uid, where
    provider = load_yaml(GRAFANA_DIR / "provisioning" / "dashboards" / "stocksent.yml")
    assert provider["providers"][0]["options"]["path"] == "/etc/grafana/dashboards"
    json.dumps(dashboard)  # serialisable as is


def test_latency_panels_are_percentiles_over_histogram_buckets() -> None:
    panels = {panel["title"]: panel for panel in dashboard_panels()}
    for title, metric in [
        ("End-to-end latency", "stocksent_classifier_end_to_end_seconds_bucket"),
        ("Inference latency", "stocksent_classifier_inference_seconds_bucket"),
    ]:
        exprs = [target["expr"] for target in panels[title]["targets"]]
        assert len(exprs) >= 2, f"{title}: want several percentiles"
        for expr in exprs:
            assert expr.startswith("histogram_quantile(") and metric in expr, expr
            assert "by (le" in expr, f"{title}: quantile must aggregate by le: {expr}"
    stages = [target["expr"] for target in panels["Where a batch's time goes (p95)"]["targets"]]
    for metric, expr in zip(
        ("scoring_wait_seconds", "inference_seconds", "publish_seconds"), stages, strict=True
    ):
        assert expr.startswith("histogram_quantile(0.95, sum by (le) (rate(") and (
            f"stocksent_classifier_{metric}_bucket" in expr
        ), expr


def test_per_symbol_panels_show_the_aggregators_views_for_a_bounded_set_of_symbols() -> None:
    """The per-symbol gauges are shown for one of the aggregator's default views (the names
    the panels hard-code) and for the top or bottom few symbols only."""
    views = {view.name for view in from_arguments(AggregatorSettings, {}, {}).views}
    shown: set[str] = set()
    for query in dashboard_queries():
        if "stocksent_aggregator_symbol_" not in query.expr:
            continue
        named = set(re.findall(r'window="([^"]+)"', query.expr))
        assert len(named) == 1 and named <= views, f"{query.where}: views {named}, not {views}"
        assert re.search(r"\b(topk|bottomk)\(\d+,", query.expr), f"{query.where}: every symbol"
        shown |= named
    assert shown == views, "a per-symbol panel for each view"


def test_dashboard_and_rules_use_contract_metric_names_only_and_all_of_them() -> None:
    contract = contract_metric_names()
    assert len(contract) >= 20, "the metric table of docs/CONTRACTS.md did not parse"
    allowed = set(contract)
    for name, kind in contract.items():
        if kind.startswith("histogram"):
            allowed |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
    used: set[str] = set()
    for query in [*dashboard_queries(), *rule_queries()]:
        names = metric_names(query.expr)
        unknown = names - allowed
        assert not unknown, f"{query.where} uses metrics not in docs/CONTRACTS.md: {unknown}"
        used |= names
    base = {
        name.removesuffix("_bucket").removesuffix("_sum").removesuffix("_count") for name in used
    }
    dashboard_base = {
        name.removesuffix("_bucket").removesuffix("_sum").removesuffix("_count")
        for query in dashboard_queries()
        for name in metric_names(query.expr)
    }
    assert set(contract) <= base
    assert not set(contract) - dashboard_base, (
        f"metrics never shown on the dashboard: {sorted(set(contract) - dashboard_base)}"
    )


def test_contract_names_match_the_services_closed_lists() -> None:
    """docs/CONTRACTS.md and the closed lists of the classifier, learner, aggregator and
    producer name the same metrics."""
    stream_metrics = pytest.importorskip("stream.metrics")
    learner_metrics = pytest.importorskip("stream.learner_metrics")
    aggregator_metrics = pytest.importorskip("stream.aggregate.metrics")
    producer_metrics = pytest.importorskip("producers.metrics")
    in_code = (
        {stream_metrics.PREFIX + name for name in stream_metrics.METRIC_NAMES}
        | {learner_metrics.PREFIX + name for name in learner_metrics.METRIC_NAMES}
        | {aggregator_metrics.PREFIX + name for name in aggregator_metrics.METRIC_NAMES}
        | set(producer_metrics.METRIC_NAMES)
    )
    assert in_code == set(contract_metric_names())


# ---- the two scrape configs ------------------------------------------------------------------


def test_local_and_compose_configs_agree() -> None:
    local, compose = load_yaml(LOCAL_CONFIG), load_yaml(COMPOSE_CONFIG)
    assert local["rule_files"] == compose["rule_files"] == ["alerts.yml"]
    local_jobs = {job["job_name"]: job for job in local["scrape_configs"]}
    compose_jobs = {job["job_name"]: job for job in compose["scrape_configs"]}
    services = {CLASSIFIER_JOB, PRODUCER_JOB, LEARNER_JOB, AGGREGATOR_JOB}
    assert services == set(local_jobs)
    assert services <= set(compose_jobs)
    assert local_jobs[CLASSIFIER_JOB]["static_configs"] == [{"targets": ["127.0.0.1:9300"]}]
    assert local_jobs[PRODUCER_JOB]["static_configs"] == [{"targets": ["127.0.0.1:9301"]}]
    # every replica of `--scale classifier=N`: one A record each
    assert compose_jobs[CLASSIFIER_JOB]["dns_sd_configs"] == [
        {"names": ["classifier"], "type": "A", "port": 9300, "refresh_interval": "15s"}
    ]
    assert compose_jobs[PRODUCER_JOB]["static_configs"] == [{"targets": ["producer:9301"]}]
    assert local_jobs[LEARNER_JOB]["static_configs"] == [{"targets": ["127.0.0.1:9302"]}]
    assert compose_jobs[LEARNER_JOB]["static_configs"] == [{"targets": ["learner:9302"]}]
    # the aggregator scales like the classifier
    assert local_jobs[AGGREGATOR_JOB]["static_configs"] == [{"targets": ["127.0.0.1:9303"]}]
    assert compose_jobs[AGGREGATOR_JOB]["dns_sd_configs"] == [
        {"names": ["aggregator"], "type": "A", "port": 9303, "refresh_interval": "15s"}
    ]


def test_install_script_is_valid_bash_and_idempotent() -> None:
    _ok(subprocess.run(["bash", "-n", str(INSTALL_SCRIPT)], capture_output=True, text=True))
    promtool("--version")  # skips when the tools cannot be had
    result = subprocess.run(
        ["bash", str(INSTALL_SCRIPT)], capture_output=True, text=True, timeout=60
    )
    _ok(result)
    assert "already installed" in result.stdout
