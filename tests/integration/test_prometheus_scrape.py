"""A real Prometheus scrapes a running producer, classifier and aggregator; the dashboard and
the alert rules work on what it collected.

`stocksent produce --synthetic` and `stocksent classify` run as child processes against the
session broker (their own topics, a few bad records among the input so the DLQ has data);
`stocksent aggregate` reads a labeled topic holding a known stream (tests/aggregate_support.py,
its ground truth computed independently), with its default 60s and 1h views. Prometheus
(Debian package, loopback, temporary data dir) scrapes all three every second with the job
names and alert rules of deploy/prometheus/. Then every PromQL expression of the dashboard and
the rules evaluates without error through the HTTP API, the throughput panels show traffic,
the per-symbol panels show the ground truth, every rule evaluates healthy, and the contract's
core series exist.
"""

from __future__ import annotations

import re
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from stocksent.service_process import ServiceProcess
from tests.aggregate_support import (
    AggregatorProcess,
    Truth,
    ground_truth,
    labeled_stream,
    produce_stream,
)
from tests.classifier_support import ClassifierProcess, model_spec
from tests.kafka_support import produce, unique_name
from tests.polling import wait_for
from tests.prometheus_support import (
    AGGREGATOR_JOB,
    CLASSIFIER_JOB,
    PRODUCER_JOB,
    PrometheusError,
    RunningPrometheus,
    dashboard_panels,
    dashboard_queries,
    expand_grafana_variables,
    require_prometheus_tools,
    rule_queries,
    scrape_config,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

THROUGHPUT_PANELS = ("Input rate", "Output rate")
RATE_INTERVAL = "30s"  # what $__rate_interval stands for here: 30 one-second scrapes
# Series a short synthetic run with a few bad records must produce (docs/CONTRACTS.md).
EXPECTED_SERIES = (
    "stocksent_classifier_messages_consumed_total",
    "stocksent_classifier_records_published_total",
    "stocksent_classifier_dead_letters_total",
    "stocksent_classifier_batch_size_bucket",
    "stocksent_classifier_scoring_wait_seconds_bucket",
    "stocksent_classifier_inference_seconds_bucket",
    "stocksent_classifier_publish_seconds_bucket",
    "stocksent_classifier_end_to_end_seconds_bucket",
    "stocksent_classifier_consumer_lag",
    "stocksent_classifier_predictions_total",
    "stocksent_classifier_symbol_predictions_total",
    "stocksent_classifier_model_info",
    "stocksent_producer_messages_published_total",
    "stocksent_producer_requests_total",
    "stocksent_producer_circuit_open",
    "stocksent_aggregator_messages_consumed_total",
    "stocksent_aggregator_windows_emitted_total",
    "stocksent_aggregator_late_records_total",
    "stocksent_aggregator_dead_letters_total",
    "stocksent_aggregator_open_windows",
    "stocksent_aggregator_watermark_lag_seconds",
    "stocksent_aggregator_symbol_bullish_share",
    "stocksent_aggregator_symbol_messages",
    "stocksent_aggregator_errors_total",
)
# The aggregator's input: 3 partitions of labeled records over 10 minutes of event time (some
# late), then one far ahead in each partition, which closes every window of both views.
LABELED = labeled_stream(3, 200, seed=31)
VIEWS_S = {"60s": 60, "1h": 3600}  # the default views, which the dashboard names
GRACE_S = 30  # the default grace
OUTAGE_ALERTS = {
    "StocksentClassifierDown",
    "StocksentClassifierAbsent",
    "StocksentProducerDown",
    "StocksentAggregatorDown",
    "StocksentAggregatorAbsent",
}
BAD_RECORDS = [
    (b"1", b"{not json", None),
    (b"2", b'{"id": 2}', None),
    (b"3", b'{"id": 3, "body": "   "}', None),
]


class ProducerProcess(ServiceProcess):
    """`stocksent produce --synthetic ...` as a child process."""

    def __init__(self, bootstrap: str, topic: str, workdir: Path) -> None:
        args = ["--synthetic", "--rate", "40", "--seed", "7", "--topic", topic]
        args += ["--bootstrap-servers", bootstrap, "--state", str(workdir / "producer-state.json")]
        super().__init__("produce", args, workdir / "producer.log")

    def stop(self, timeout: float = 20.0) -> int:
        """SIGINT (flush and exit 0); SIGKILL if it lingers. The exit code."""
        return self.terminate(timeout, signal.SIGINT)


def aggregator_of_known_stream(
    bootstrap: str, make_topic: Callable[..., str], workdir: Path
) -> AggregatorProcess:
    """`stocksent aggregate` (default views and grace, early updates every second) over a
    labeled topic holding LABELED and one malformed record."""
    labeled = make_topic("prom.labeled", partitions=3)
    produce(bootstrap, labeled, [(None, b"{not json", None)])
    produce_stream(bootstrap, labeled, LABELED, 1)
    output = make_topic("prom.by-symbol")  # for a unique name: the aggregator creates its own
    args = ["--input-topic", labeled, "--output-topic", output + ".agg"]
    args += ["--dlq-topic", output + ".dlq", "--group-id", unique_name("prom-agg")]
    args += ["--emit-every", "1s"]
    return AggregatorProcess(bootstrap, args, workdir / "aggregator.log")


@pytest.fixture
def scraped_pipeline(
    kafka_bootstrap: str, make_topic: Callable[..., str], tmp_path: Path
) -> Iterator[RunningPrometheus]:
    """Producer, classifier and aggregator running, scraped by a real Prometheus that
    already holds some traffic and the aggregator's final windows; everything stopped
    afterwards."""
    require_prometheus_tools()
    input_topic = make_topic("prom.in", partitions=3)
    output_topic = make_topic("prom.out", partitions=3)
    dlq_topic = make_topic("prom.dlq")
    produce(kafka_bootstrap, input_topic, BAD_RECORDS)

    prometheus_dir = tmp_path / "prometheus"
    prometheus_dir.mkdir()
    classifier = ClassifierProcess(
        kafka_bootstrap,
        [
            "--input-topic",
            input_topic,
            "--output-topic",
            output_topic,
            "--dlq-topic",
            dlq_topic,
            "--group-id",
            unique_name("prom-group"),
            "--batch-wait-ms",
            "50",
            "--model",
            model_spec(),
        ],
        tmp_path / "classifier.log",
    )
    producer = ProducerProcess(kafka_bootstrap, input_topic, tmp_path)
    aggregator = aggregator_of_known_stream(kafka_bootstrap, make_topic, tmp_path)
    prometheus = RunningPrometheus(
        prometheus_dir,
        scrape_config(
            {
                CLASSIFIER_JOB: [f"127.0.0.1:{classifier.metrics_port}"],
                PRODUCER_JOB: [f"127.0.0.1:{producer.metrics_port}"],
                AGGREGATOR_JOB: [f"127.0.0.1:{aggregator.metrics_port}"],
            }
        ),
    )
    try:
        prometheus.start()
        classifier.wait_ready(timeout=120)

        def flowing() -> bool:
            if producer.process.poll() is not None:
                raise AssertionError(f"producer exited early:\n{producer.log()}")
            result = prometheus.query(
                "sum(rate(stocksent_classifier_records_published_total[10s])) > 0"
                " and sum(rate(stocksent_producer_messages_published_total[10s])) > 0"
            )
            return bool(result)

        wait_for(flowing, 120, "labeled records to flow through the scraped services")
        wait_for(_windows_scraped(prometheus), 60, "the aggregator's final windows")
        # a few more scrapes, so each rate window holds traffic and each rule has evaluated
        wait_for(_all_rules_evaluated(prometheus), 30, "every alert rule to be evaluated")
        yield prometheus
    except AssertionError as err:
        raise AssertionError(
            f"{err}\n--- classifier ---\n{classifier.log()}\n--- producer ---\n{producer.log()}"
            f"\n--- aggregator ---\n{aggregator.log()}\n--- prometheus ---\n{prometheus.log()}"
        ) from None
    finally:
        producer_exit = producer.stop()
        classifier_exit = classifier.terminate()
        aggregator_exit = aggregator.terminate()
        prometheus.stop()
    assert producer_exit == 0, producer.log()
    assert classifier_exit == 0, classifier.log()
    assert aggregator_exit == 0, aggregator.log()


def _windows_scraped(prometheus: RunningPrometheus) -> Callable[[], bool]:
    """True once Prometheus holds the per-symbol gauges of every symbol of each view's last
    final window."""
    last = _last_final_windows(ground_truth(LABELED, list(VIEWS_S.values()), GRACE_S))

    def check() -> bool:
        return all(
            len(prometheus.query(f'stocksent_aggregator_symbol_bullish_share{{window="{view}"}}'))
            == len(windows)
            for view, windows in last.items()
        )

    return check


def _all_rules_evaluated(prometheus: RunningPrometheus) -> Callable[[], bool]:
    def check() -> bool:
        rules = [r for g in prometheus.api("rules")["groups"] for r in g["rules"]]
        return bool(rules) and all(
            not r.get("lastEvaluation", "").startswith("0001") for r in rules
        )

    return check


def _last_final_windows(truth: Truth) -> dict[str, dict[str, dict[str, Any]]]:
    """view -> symbol -> figures of the view's last final window (the gauges show those)."""
    last: dict[str, dict[str, dict[str, Any]]] = {}
    for view, size in VIEWS_S.items():
        latest = max(start for (_, s, start) in truth.windows if s == size)
        last[view] = {
            symbol: figures
            for (symbol, s, start), figures in truth.windows.items()
            if s == size and start == latest
        }
    return last


def test_dashboard_and_rules_evaluate_on_scraped_metrics(
    scraped_pipeline: RunningPrometheus,
) -> None:
    prometheus = scraped_pipeline

    # both services are scraped, under the job names the rules and panels use
    up = {r["metric"]["job"]: r["value"][1] for r in prometheus.query("up") if "job" in r["metric"]}
    assert up == {CLASSIFIER_JOB: "1", PRODUCER_JOB: "1", AGGREGATOR_JOB: "1"}

    # every expression evaluates without error
    failures = []
    for query in [*dashboard_queries(), *rule_queries()]:
        expr = expand_grafana_variables(query.expr, RATE_INTERVAL)
        try:
            prometheus.query(expr)
        except PrometheusError as err:
            failures.append(f"{query.where}: {err}\n  {expr}")
    assert not failures, "\n".join(failures)

    # the throughput panels show traffic: each query returns series, some of them above zero
    panels = {panel["title"]: panel for panel in dashboard_panels()}
    for title in THROUGHPUT_PANELS:
        for target in panels[title]["targets"]:
            expr = expand_grafana_variables(target["expr"], RATE_INTERVAL)
            result = prometheus.query(expr)
            assert result, f"panel {title!r} query {target['refId']} is empty: {expr}"
            assert any(float(r["value"][1]) > 0 for r in result), f"{title}: no traffic: {expr}"

    # the dead letters of the bad records show, by reason
    dlq = prometheus.query("sum by (reason) (stocksent_classifier_dead_letters_total)")
    assert sum(float(r["value"][1]) for r in dlq) >= len(BAD_RECORDS)

    # every alert rule evaluated healthily; with traffic flowing none of the outage alerts fires
    rules = [r for g in prometheus.api("rules")["groups"] for r in g["rules"]]
    unhealthy = {r["name"]: r.get("lastError") for r in rules if r["health"] != "ok"}
    assert not unhealthy, unhealthy
    firing = {
        r["name"]
        for r in rules
        if r.get("state") == "firing"  # recording rules have no state
        and r["name"] in OUTAGE_ALERTS
    }
    assert not firing

    # the contract's core series exist under their documented names
    names = set(prometheus.api("label/__name__/values"))
    missing = [name for name in EXPECTED_SERIES if name not in names]
    assert not missing, f"series never scraped: {missing}"
    version = prometheus.query("stocksent_classifier_model_info")
    assert version and version[0]["metric"].get("version")

    _per_symbol_panels_show_the_ground_truth(prometheus)


def _per_symbol_panels_show_the_ground_truth(prometheus: RunningPrometheus) -> None:
    """The per-symbol panels, queried as Grafana does, show the last final windows of the
    known stream; the aggregator's counters match its ground truth."""
    truth = ground_truth(LABELED, list(VIEWS_S.values()), GRACE_S)
    last = _last_final_windows(truth)
    panels = {panel["title"]: panel for panel in dashboard_panels()}

    def shown(title: str, ref: str = "A") -> tuple[dict[str, float], int]:
        """symbol -> value of a panel's query, and the N of its topk/bottomk."""
        (expr,) = [t["expr"] for t in panels[title]["targets"] if t["refId"] == ref]
        result = prometheus.query(expand_grafana_variables(expr, RATE_INTERVAL))
        limit = int(re.search(r"(?:topk|bottomk)\((\d+),", expr).group(1))  # type: ignore[union-attr]
        return {r["metric"]["symbol"]: float(r["value"][1]) for r in result}, limit

    def share(figures: dict[str, Any]) -> float:
        return float(figures["bullish"]) / figures["count"]

    hour, minute = last["1h"], last["60s"]
    shares = sorted(share(figures) for figures in hour.values())
    bullish, limit = shown("Most bullish symbols, last hour")
    assert sorted(bullish.values()) == pytest.approx(shares[-limit:])
    assert bullish == pytest.approx({s: share(hour[s]) for s in bullish})
    counts, _ = shown("Most bullish symbols, last hour", "B")
    assert counts == {s: hour[s]["count"] for s in bullish}
    bearish, limit = shown("Most bearish symbols, last hour")
    assert sorted(bearish.values()) == pytest.approx(shares[:limit])

    busiest, limit = shown("Bullish share of the top symbols (60s windows)")
    assert len(busiest) == min(limit, len(minute)) and busiest
    assert busiest == pytest.approx({s: share(minute[s]) for s in busiest})
    left_out = [figures["count"] for s, figures in minute.items() if s not in busiest]
    assert min(minute[s]["count"] for s in busiest) >= max(left_out, default=0)

    for view, size in VIEWS_S.items():
        finals = prometheus.query(
            f'sum(stocksent_aggregator_windows_emitted_total{{window="{view}", final="true"}})'
        )
        assert float(finals[0]["value"][1]) == sum(1 for (_, s, _) in truth.windows if s == size)
        late = prometheus.query(f'sum(stocksent_aggregator_late_records_total{{window="{view}"}})')
        assert float(late[0]["value"][1]) == truth.late[size], view
    invalid = prometheus.query(
        'sum(stocksent_aggregator_dead_letters_total{reason="invalid_json"})'
    )
    assert float(invalid[0]["value"][1]) == 1
