"""A real Prometheus scrapes a running producer and classifier; the dashboard and the alert
rules work on what it collected.

`stocksent produce --synthetic` and `stocksent classify` run as child processes against the
session broker (their own topics, a few bad records among the input so the DLQ has data);
Prometheus (Debian package, loopback, temporary data dir) scrapes both every second with the
job names and alert rules of deploy/prometheus/. Then every PromQL expression of the
dashboard and the rules evaluates without error through the HTTP API, the throughput panels
show traffic, every rule evaluates healthy, and the contract's core series exist.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from stocksent.service_process import ServiceProcess
from tests.classifier_support import ClassifierProcess, model_spec
from tests.kafka_support import produce, unique_name
from tests.polling import wait_for
from tests.prometheus_support import (
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
)
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


@pytest.fixture
def scraped_pipeline(
    kafka_bootstrap: str, make_topic: Callable[..., str], tmp_path: Path
) -> Iterator[RunningPrometheus]:
    """Producer and classifier running, scraped by a real Prometheus that already holds
    some traffic; everything stopped afterwards."""
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
    prometheus = RunningPrometheus(
        prometheus_dir,
        scrape_config(
            {
                CLASSIFIER_JOB: [f"127.0.0.1:{classifier.metrics_port}"],
                PRODUCER_JOB: [f"127.0.0.1:{producer.metrics_port}"],
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
        # a few more scrapes, so each rate window holds traffic and each rule has evaluated
        wait_for(_all_rules_evaluated(prometheus), 30, "every alert rule to be evaluated")
        yield prometheus
    except AssertionError as err:
        raise AssertionError(
            f"{err}\n--- classifier ---\n{classifier.log()}\n--- producer ---\n{producer.log()}"
            f"\n--- prometheus ---\n{prometheus.log()}"
        ) from None
    finally:
        producer_exit = producer.stop()
        classifier_exit = classifier.terminate()
        prometheus.stop()
    assert producer_exit == 0, producer.log()
    assert classifier_exit == 0, classifier.log()


def _all_rules_evaluated(prometheus: RunningPrometheus) -> Callable[[], bool]:
    def check() -> bool:
        rules = [r for g in prometheus.api("rules")["groups"] for r in g["rules"]]
        return bool(rules) and all(
            not r.get("lastEvaluation", "").startswith("0001") for r in rules
        )

    return check


def test_dashboard_and_rules_evaluate_on_scraped_metrics(
    scraped_pipeline: RunningPrometheus,
) -> None:
    prometheus = scraped_pipeline

    # both services are scraped, under the job names the rules and panels use
    up = {r["metric"]["job"]: r["value"][1] for r in prometheus.query("up") if "job" in r["metric"]}
    assert up == {CLASSIFIER_JOB: "1", PRODUCER_JOB: "1"}

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
        and r["name"]
        in {"StocksentClassifierDown", "StocksentClassifierAbsent", "StocksentProducerDown"}
    }
    assert not firing

    # the contract's core series exist under their documented names
    names = set(prometheus.api("label/__name__/values"))
    missing = [name for name in EXPECTED_SERIES if name not in names]
    assert not missing, f"series never scraped: {missing}"
    version = prometheus.query("stocksent_classifier_model_info")
    assert version and version[0]["metric"].get("version")
