"""A real Prometheus for tests, and the PromQL the repo ships (dashboard panels, alert rules).

`prometheus_tools()` finds `prometheus` and `promtool` (Debian's `prometheus` package),
installing them once with `scripts/install-prometheus.sh` when they are missing and this is
root; `RunningPrometheus.start()` starts a server on a free loopback port with a temporary
data dir and a scrape config derived from `deploy/prometheus/prometheus.yml` (same job names
and alert rules, given targets, 1s intervals), and `stop()` ends it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from common.children import exits_with_parent
from stocksent.local_kafka import free_port
from stocksent.service_process import REPO_ROOT

PROMETHEUS_DIR = REPO_ROOT / "deploy" / "prometheus"
LOCAL_CONFIG = PROMETHEUS_DIR / "prometheus.yml"
COMPOSE_CONFIG = PROMETHEUS_DIR / "prometheus.compose.yml"
ALERT_RULES = PROMETHEUS_DIR / "alerts.yml"
ALERT_RULE_TESTS = PROMETHEUS_DIR / "alerts_test.yml"
GRAFANA_DIR = REPO_ROOT / "deploy" / "grafana"
DASHBOARD = GRAFANA_DIR / "dashboards" / "stocksent.json"
INSTALL_SCRIPT = REPO_ROOT / "scripts" / "install-prometheus.sh"

CLASSIFIER_JOB = "stocksent-classifier"
PRODUCER_JOB = "stocksent-producer"
LEARNER_JOB = "stocksent-learner"
AGGREGATOR_JOB = "stocksent-aggregator"

_tools: tuple[str, str] | str | None = None  # (prometheus, promtool), or why not


def prometheus_tools() -> tuple[str, str] | str:
    """(prometheus, promtool) paths, installing the Debian package once if needed and allowed;
    a string saying why not when they cannot be had."""
    global _tools
    if _tools is None:
        _tools = _find_or_install()
    return _tools


def require_prometheus_tools() -> tuple[str, str]:
    """(prometheus, promtool), or a pytest skip naming why they are absent."""
    tools = prometheus_tools()
    if isinstance(tools, str):
        pytest.skip(tools)
    return tools


def _find() -> tuple[str, str] | None:
    prometheus, promtool = shutil.which("prometheus"), shutil.which("promtool")
    return (prometheus, promtool) if prometheus and promtool else None


def _find_or_install() -> tuple[str, str] | str:
    found = _find()
    if found:
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return (
            "prometheus/promtool not installed and cannot be installed here (needs root and "
            f"apt-get); run {INSTALL_SCRIPT.relative_to(REPO_ROOT)} as root"
        )
    result = subprocess.run(
        ["bash", str(INSTALL_SCRIPT)], capture_output=True, text=True, timeout=600
    )
    found = _find()
    if found:
        return found
    return (
        f"prometheus/promtool absent and {INSTALL_SCRIPT.name} failed "
        f"(exit {result.returncode}): {(result.stderr or result.stdout).strip()[-500:]}"
    )


def promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """Runs `promtool ARGS` (skipping the test when promtool cannot be had)."""
    _, tool = require_prometheus_tools()
    return subprocess.run(
        [tool, *map(str, args)], capture_output=True, text=True, timeout=120, cwd=REPO_ROOT
    )


# ---- the PromQL shipped in the repo --------------------------------------------------------


@dataclass(frozen=True)
class Query:
    """One PromQL expression of the dashboard or the rules, and where it comes from."""

    where: str
    expr: str


def load_yaml(path: Path) -> Any:
    """A YAML file, parsed."""
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def load_dashboard() -> dict[str, Any]:
    """The provisioned Grafana dashboard."""
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return dashboard


def dashboard_panels(dashboard: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every panel, rows' nested panels included, rows themselves excluded."""
    dashboard = load_dashboard() if dashboard is None else dashboard
    panels: list[dict[str, Any]] = []
    for panel in dashboard.get("panels", []):
        if panel.get("type") == "row":
            panels.extend(panel.get("panels", []))
        else:
            panels.append(panel)
    return panels


def dashboard_queries(dashboard: Mapping[str, Any] | None = None) -> list[Query]:
    """Every panel target's and annotation's expression, and the selector of each
    `label_values()` variable."""
    dashboard = load_dashboard() if dashboard is None else dashboard
    queries = [
        Query(f"panel {panel['title']!r} target {target.get('refId')}", target["expr"])
        for panel in dashboard_panels(dashboard)
        for target in panel.get("targets", [])
        if target.get("expr")
    ]
    queries += [
        Query(f"annotation {annotation['name']!r}", annotation["expr"])
        for annotation in dashboard.get("annotations", {}).get("list", [])
        if annotation.get("expr")
    ]
    for variable in dashboard.get("templating", {}).get("list", []):
        query = variable.get("query")
        text = query.get("query", "") if isinstance(query, dict) else str(query or "")
        match = re.fullmatch(r"\s*label_values\((.+),\s*(\w+)\s*\)\s*", text)
        if match:
            queries.append(Query(f"variable ${variable['name']}", match.group(1)))
    return queries


def rule_queries() -> list[Query]:
    """Every alert (and recording) rule expression of deploy/prometheus/alerts.yml."""
    return [
        Query(f"rule {rule.get('alert') or rule.get('record')}", rule["expr"])
        for group in load_yaml(ALERT_RULES)["groups"]
        for rule in group["rules"]
    ]


def expand_grafana_variables(expr: str, rate_interval: str = "1m") -> str:
    """The expression as Grafana sends it: its built-in intervals and our `$symbol`
    variable (all values) replaced."""
    replacements = {
        "$__rate_interval": rate_interval,
        "$__interval": rate_interval,
        "$__range": rate_interval,
        "$symbol": ".*",
    }
    for name, value in replacements.items():
        expr = expr.replace(name, value)
    return expr


def metric_names(expr: str) -> set[str]:
    """Project metric names an expression refers to (`stocksent_*`)."""
    return set(re.findall(r"\bstocksent_[a-z0-9_]+", expr))


def contract_metric_names() -> dict[str, str]:
    """metric name -> type, from the table of docs/CONTRACTS.md."""
    text = (REPO_ROOT / "docs" / "CONTRACTS.md").read_text(encoding="utf-8")
    return {
        name: kind.strip()
        for name, kind in re.findall(r"^\|\s*`(stocksent_[a-z0-9_]+)`\s*\|\s*([^|]+)\|", text, re.M)
    }


# ---- a running server ----------------------------------------------------------------------


def scrape_config(
    targets: Mapping[str, Sequence[str]],
    interval: str = "1s",
    with_rules: bool = True,
) -> dict[str, Any]:
    """The local config (deploy/prometheus/prometheus.yml) with `targets` per job name, jobs
    without targets dropped, both intervals set to `interval`, and the alert rules by absolute
    path (so the temporary config can live anywhere)."""
    config = load_yaml(LOCAL_CONFIG)
    config["global"]["scrape_interval"] = interval
    config["global"]["evaluation_interval"] = interval
    config["rule_files"] = [str(ALERT_RULES)] if with_rules else []
    jobs = []
    for job in config["scrape_configs"]:
        if job["job_name"] in targets:
            job = dict(job, static_configs=[{"targets": list(targets[job["job_name"]])}])
            jobs.append(job)
    unknown = set(targets) - {job["job_name"] for job in config["scrape_configs"]}
    if unknown:
        raise ValueError(f"no such job in {LOCAL_CONFIG.name}: {sorted(unknown)}")
    config["scrape_configs"] = jobs
    return config


class PrometheusError(RuntimeError):
    """The server answered a query with an error (e.g. a PromQL parse error)."""


class RunningPrometheus:
    """A real Prometheus on 127.0.0.1:<free port> with its own temporary data dir."""

    def __init__(self, workdir: Path, config: Mapping[str, Any]) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config_path = workdir / "prometheus.yml"
        self.log_path = workdir / "prometheus.log"
        self.config_path.write_text(yaml.safe_dump(dict(config), sort_keys=False))
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> RunningPrometheus:
        """Starts the server and waits until /-/ready answers."""
        binary, _ = require_prometheus_tools()
        (self.workdir / "data").mkdir(exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                exits_with_parent(  # a killed test run leaves no Prometheus behind
                    [
                        binary,
                        f"--config.file={self.config_path}",
                        f"--storage.tsdb.path={self.workdir / 'data'}",
                        f"--web.listen-address=127.0.0.1:{self.port}",
                        "--storage.tsdb.retention.time=1h",
                        "--log.level=warn",
                    ]
                ),
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"prometheus exited ({self.process.returncode}):\n{self.log()}")
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as reply:
                    if reply.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"prometheus not ready after {timeout}s:\n{self.log()}")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it lingers."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)

    def log(self) -> str:
        """The server's log so far (the tail)."""
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def api(self, path: str, **params: str) -> Any:
        """GET /api/v1/<path>; the `data` member, or PrometheusError with the server's error."""
        url = f"{self.url}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(url, timeout=10) as reply:
                body = json.loads(reply.read())
        except urllib.error.HTTPError as err:
            body = json.loads(err.read() or b"{}")
        if body.get("status") != "success":
            raise PrometheusError(f"{body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query; the result vector (or scalar, as a one-item list)."""
        data = self.api("query", query=expr)
        if data["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": data["result"]}]
        result: list[dict[str, Any]] = data["result"]
        return result


def start_prometheus(
    workdir: Path, targets: Mapping[str, Sequence[str]], interval: str = "1s"
) -> Iterator[RunningPrometheus]:
    """Generator for fixtures: yields a started server scraping `targets`, stops it after."""
    server = RunningPrometheus(workdir, scrape_config(targets, interval)).start()
    try:
        yield server
    finally:
        server.stop()
