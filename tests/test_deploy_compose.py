"""docker-compose.yml, Dockerfile, .dockerignore and .env.example are complete and consistent.

No Docker engine runs here, so these read the files: the compose file parses, every service
can be built or pulled, health checks and start order are declared, every mounted file exists,
the classifier and the aggregator can be scaled and are found by Prometheus, and every
environment variable the Python services read is documented in .env.example (discovered from
the option lists).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from common.kafka_settings import CONNECTION_OPTIONS, KafkaConnection
from common.metrics_endpoint import METRICS_PORTS
from common.options import from_arguments
from stocksent import topics_cli
from stocksent.local_kafka import DEFAULT_KAFKA_VERSION, SINGLE_NODE_SETTINGS
from stocksent.service_process import REPO_ROOT
from stream.aggregate.settings import AggregatorSettings
from tools.reference import command_options

COMPOSE = REPO_ROOT / "docker-compose.yml"
DOCKERFILE = REPO_ROOT / "Dockerfile"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"
ENV_EXAMPLE = REPO_ROOT / ".env.example"

PYTHON_SERVICES = {
    "topic-init",
    "model-store-init",
    "producer",
    "classifier",
    "learner",
    "aggregator",
}
SERVICES = PYTHON_SERVICES | {"kafka", "prometheus", "grafana"}
# The long-running ones, each with its own metrics port (common/metrics_endpoint.py).
METRICS_SERVICES = ("producer", "classifier", "learner", "aggregator")
MODEL_STORE = "/var/lib/stocksent/models"
# Packages whose modules define `Option` lists (each option reads STOCKSENT_<NAME>).
OPTION_PACKAGES = ("stocksent", "stream", "producers", "model", "bench")
# Variables only docker-compose.yml interpolates (no Python code reads them).
COMPOSE_ONLY_VARIABLES = {"GRAFANA_ADMIN_PASSWORD"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = compose["services"]
    return result


def _env(service: dict[str, Any]) -> dict[str, str]:
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    return {key: str(value) for key, value in environment.items()}


def _env_without_dotenv(service: dict[str, Any]) -> dict[str, str]:
    """`_env` with each `${NAME:-default}` replaced by its default, as compose does when
    neither .env nor the shell sets NAME."""
    return {
        key: re.sub(r"\$\{[A-Z0-9_]+:-([^}]*)\}", r"\1", value)
        for key, value in _env(service).items()
    }


def _dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    pairs = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            instruction, _, rest = line.partition(" ")
            pairs.append((instruction.upper(), rest.strip()))
    return pairs


# ---- compose ---------------------------------------------------------------------------------


def test_compose_has_the_services_each_with_an_image_or_build(
    services: dict[str, dict[str, Any]],
) -> None:
    assert set(services) == SERVICES
    for name, service in services.items():
        assert service.get("image") or service.get("build"), f"{name}: no image or build"
    for name in PYTHON_SERVICES:
        assert services[name]["build"] == ".", f"{name}: built from the project's Dockerfile"
        assert services[name]["image"] == services["classifier"]["image"], "one image for all"


def test_kafka_is_a_single_kraft_node_where_transactions_work(
    services: dict[str, dict[str, Any]],
) -> None:
    kafka = services["kafka"]
    assert kafka["image"] == f"apache/kafka:{DEFAULT_KAFKA_VERSION}"  # the version run uses
    env = _env(kafka)
    for name, value in SINGLE_NODE_SETTINGS.items():  # the settings of the local broker
        assert str(env["KAFKA_" + name.upper().replace(".", "_")]).lower() == value, name
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"
    assert env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == "1"
    assert env["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"] == "1"
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert "kafka-broker-api-versions" in " ".join(kafka["healthcheck"]["test"])


def test_healthchecks_where_they_matter(services: dict[str, dict[str, Any]]) -> None:
    for name in ("kafka", "producer", "aggregator", "learner", "prometheus", "grafana"):
        check = services[name].get("healthcheck", {})
        assert check.get("test") and not check.get("disable"), f"{name}: no healthcheck"
    # the classifier uses the image's HEALTHCHECK (GET /healthz), which it must not disable
    assert "healthcheck" not in services["classifier"]
    # a one-shot job has nothing to probe
    assert services["topic-init"]["healthcheck"] == {"disable": True}
    assert services["model-store-init"]["healthcheck"] == {"disable": True}
    assert services["topic-init"]["restart"] == "no"


def test_each_service_health_check_probes_its_own_port(
    services: dict[str, dict[str, Any]],
) -> None:
    """The image's HEALTHCHECK probes the classifier's port: a service on another port needs
    a check of its own, on the port it serves, or Docker marks it unhealthy for good."""
    (image_check,) = [args for kind, args in _dockerfile_instructions() if kind == "HEALTHCHECK"]
    for name in METRICS_SERVICES:
        variable = f"STOCKSENT_{name.upper()}_METRICS_PORT"
        port = _env(services[name])[variable]
        path = "/metrics" if name == "producer" else "/healthz"  # the producer has no /healthz
        if "healthcheck" in services[name]:
            probe = " ".join(services[name]["healthcheck"]["test"])
            assert f"http://127.0.0.1:{port}{path}'" in probe, f"{name} on {port}: {probe}"
        else:  # the image's, which reads the port from the classifier's variable
            assert f"'{variable}'" in image_check and path in image_check, name


def test_start_order_uses_conditions(services: dict[str, dict[str, Any]]) -> None:
    expected = {
        ("topic-init", "kafka"): "service_healthy",
        ("producer", "topic-init"): "service_completed_successfully",
        ("classifier", "topic-init"): "service_completed_successfully",
        ("classifier", "model-store-init"): "service_completed_successfully",
        ("learner", "topic-init"): "service_completed_successfully",
        ("learner", "model-store-init"): "service_completed_successfully",
        ("aggregator", "kafka"): "service_healthy",
        ("aggregator", "topic-init"): "service_completed_successfully",
        ("grafana", "prometheus"): "service_healthy",
    }
    for (dependent, dependency), condition in expected.items():
        assert services[dependent]["depends_on"][dependency]["condition"] == condition
    for name, service in services.items():
        for dependency, spec in (service.get("depends_on") or {}).items():
            assert isinstance(spec, dict) and "condition" in spec, f"{name} -> {dependency}"
            if spec["condition"] == "service_healthy":
                target = services[dependency]
                assert target.get("healthcheck", {}).get("test") or target.get("build"), (
                    f"{name} waits for {dependency} to be healthy, which has no healthcheck"
                )
    assert services["topic-init"]["command"] == ["topics", "create"]


def test_classifier_and_aggregator_scale_and_prometheus_finds_every_replica(
    services: dict[str, dict[str, Any]],
) -> None:
    classifier = services["classifier"]
    assert "container_name" not in classifier, "a fixed name prevents --scale"
    assert "ports" not in classifier, "a fixed host port prevents --scale"
    assert classifier["command"] == ["classify"]
    compose_config = yaml.safe_load(
        (REPO_ROOT / "deploy" / "prometheus" / "prometheus.compose.yml").read_text()
    )
    jobs = {job["job_name"]: job for job in compose_config["scrape_configs"]}
    (sd,) = jobs["stocksent-classifier"]["dns_sd_configs"]
    assert sd["names"] == ["classifier"] and sd["type"] == "A"
    assert str(sd["port"]) == _env(classifier)["STOCKSENT_CLASSIFIER_METRICS_PORT"] == "9300"
    (aggregators,) = jobs["stocksent-aggregator"]["dns_sd_configs"]
    assert aggregators["names"] == ["aggregator"] and aggregators["type"] == "A"
    assert (
        str(aggregators["port"])
        == _env(services["aggregator"])["STOCKSENT_AGGREGATOR_METRICS_PORT"]
    )
    for name in ("classifier", "aggregator"):
        assert "container_name" not in services[name] and "ports" not in services[name], name
    assert jobs["stocksent-producer"]["static_configs"] == [
        {"targets": [f"producer:{_env(services['producer'])['STOCKSENT_PRODUCER_METRICS_PORT']}"]}
    ]


def test_services_serve_metrics_on_all_interfaces_in_containers(
    services: dict[str, dict[str, Any]],
) -> None:
    for name in METRICS_SERVICES:
        env = _env(services[name])
        assert env["STOCKSENT_METRICS_HOST"] == "0.0.0.0", name
        assert env["STOCKSENT_BOOTSTRAP_SERVERS"] == "kafka:9092", name
    assert _env(services["topic-init"])["STOCKSENT_BOOTSTRAP_SERVERS"] == "kafka:9092"


def test_classifiers_and_learner_share_one_model_store(
    services: dict[str, dict[str, Any]],
) -> None:
    """The learner promotes into the store the classifiers follow; it is seeded once."""
    mount = f"model-store:{MODEL_STORE}"
    for name in ("model-store-init", "classifier", "learner"):
        assert mount in services[name]["volumes"], name
    for name in ("classifier", "learner"):
        assert _env(services[name])["STOCKSENT_MODEL_STORE"] == MODEL_STORE, name
    init = services["model-store-init"]
    assert init["command"] == ["models", "init", "--store", MODEL_STORE, "--exist-ok"]
    assert init["restart"] == "no"
    assert services["learner"]["command"] == ["learn"]
    assert "ports" not in services["learner"]
    for name in METRICS_SERVICES:  # each its own, at its default
        port = _env(services[name])[f"STOCKSENT_{name.upper()}_METRICS_PORT"]
        assert int(port) == METRICS_PORTS[name]  # type: ignore[index]
        assert services[name]["expose"] == [port], name


def test_aggregator_settings_in_compose_are_valid_and_exactly_once(
    services: dict[str, dict[str, Any]],
) -> None:
    """Its environment (compose defaults, no .env) parses into the settings it runs with."""
    aggregator = services["aggregator"]
    assert aggregator["command"] == ["aggregate"]
    settings = from_arguments(AggregatorSettings, {}, _env_without_dotenv(aggregator))
    assert settings.exactly_once
    assert 0 < settings.emit_every_ms <= 10_000, "early updates within seconds for the dashboard"
    assert settings.metrics_host == "0.0.0.0"
    assert settings.metrics_port == METRICS_PORTS["aggregator"]
    assert settings.kafka.bootstrap_servers == "kafka:9092"
    # the default views, which the dashboard's per-symbol panels name
    assert settings.views == from_arguments(AggregatorSettings, {}, {}).views


def test_topic_init_creates_every_topic_of_the_aggregator(
    services: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The aggregator waits for topic-init, which must have created all its topics."""
    created: list[str] = []
    monkeypatch.setattr(
        topics_cli, "ensure_topics", lambda _, wanted: created.extend(t.name for t in wanted)
    )
    topics_cli.create_topics(KafkaConnection(), 6)
    environ = _env_without_dotenv(services["aggregator"])
    settings = from_arguments(AggregatorSettings, {}, environ)
    for topic in (
        settings.input_topic,
        settings.output_topic,
        settings.dlq_topic,
        settings.repartition_topic,
        settings.changelog_topic,
    ):
        assert topic in created, f"topics create does not create {topic}"


def test_producer_defaults_to_synthetic_source(services: dict[str, dict[str, Any]]) -> None:
    producer = services["producer"]
    assert producer["command"] == ["produce"]
    env = _env(producer)
    assert env["STOCKSENT_SYNTHETIC"] == "${STOCKSENT_SYNTHETIC:-true}"
    assert env["STOCKSENT_RATE"] == "${STOCKSENT_RATE:-20}"


def test_every_bind_mounted_file_exists(services: dict[str, dict[str, Any]]) -> None:
    mounts = []
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume["source"] if isinstance(volume, dict) else volume.split(":")[0]
            if source.startswith((".", "/")):
                mounts.append((name, source))
                assert (REPO_ROOT / source).exists(), f"{name} mounts missing {source}"
    mounted = {source for _, source in mounts}
    for needed in (
        "./deploy/prometheus/prometheus.compose.yml",
        "./deploy/prometheus/alerts.yml",
        "./deploy/grafana/provisioning/datasources",
        "./deploy/grafana/provisioning/dashboards",
        "./deploy/grafana/dashboards",
    ):
        assert needed in mounted, f"{needed} is not mounted"


def test_named_volumes_are_declared(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    declared = set(compose.get("volumes") or {})
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0] if isinstance(volume, str) else volume["source"]
            if not source.startswith((".", "/")):
                assert source in declared, f"{name} uses undeclared volume {source}"


def test_grafana_is_anonymous_viewer_on_loopback_only(
    services: dict[str, dict[str, Any]],
) -> None:
    env = _env(services["grafana"])
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "true"
    assert env["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"
    for name, service in services.items():
        for mapping in service.get("ports", []):
            assert str(mapping).startswith("127.0.0.1:"), f"{name} publishes {mapping} widely"


# ---- Dockerfile ------------------------------------------------------------------------------


def test_dockerfile_slim_python_non_root_with_healthcheck() -> None:
    instructions = _dockerfile_instructions()
    bases = [args for instruction, args in instructions if instruction == "FROM"]
    assert bases and all(base.startswith("python:3.11-slim") for base in bases)
    users = [args for instruction, args in instructions if instruction == "USER"]
    assert users, "no USER: the container would run as root"
    assert users[-1].split(":")[0] not in ("root", "0")
    (healthcheck,) = [args for instruction, args in instructions if instruction == "HEALTHCHECK"]
    assert "/healthz" in healthcheck and "urllib.request" in healthcheck
    assert "curl" not in healthcheck, "the slim image has no curl"
    entrypoint = [args for instruction, args in instructions if instruction == "ENTRYPOINT"]
    assert entrypoint == ['["stocksent"]'], "one image: `produce` or `classify` as the command"


def test_dockerfile_copies_only_what_exists_and_is_not_ignored() -> None:
    ignored = {
        line.strip().rstrip("/")
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#") and not line.startswith("!")
    }
    for needed in (".venv", ".git", "**/__pycache__", ".pytest_cache", ".env"):
        assert needed in ignored, f".dockerignore misses {needed}"
    for instruction, args in _dockerfile_instructions():
        if instruction != "COPY" or args.startswith("--from"):
            continue
        for source in args.split()[:-1]:
            assert (REPO_ROOT / source).exists(), f"COPY {source}: no such path"
            assert source not in ignored, f"COPY {source}: excluded by .dockerignore"


# ---- .env.example ----------------------------------------------------------------------------


def _variables_read_by_code() -> dict[str, set[str]]:
    """STOCKSENT_* variable -> where it is read: every command's settings class, plus literal
    names read through os.environ."""
    found: dict[str, set[str]] = {}
    for command, options in command_options():
        for option in options:
            found.setdefault(option.env, set()).add(command)
    for package in OPTION_PACKAGES:
        for path in (REPO_ROOT / package).rglob("*.py"):
            for name in re.findall(r"[\"'](STOCKSENT_[A-Z0-9_]+)[\"']", path.read_text()):
                found.setdefault(name, set()).add(str(path.relative_to(REPO_ROOT)))
    return found


def _documented_variables() -> set[str]:
    """Variables .env.example sets or shows commented out (`# NAME=value`)."""
    return set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", ENV_EXAMPLE.read_text(), re.M))


def test_required_option_lists_are_discovered() -> None:
    read = _variables_read_by_code()
    for option in CONNECTION_OPTIONS:
        assert option.env in read
    for variable in ("STOCKSENT_CLASSIFIER_METRICS_PORT", "STOCKSENT_WATCHLIST", "STOCKSENT_DEBUG"):
        assert variable in read


def test_the_image_health_check_reads_the_classifier_port_variable() -> None:
    text = DOCKERFILE.read_text()
    assert "'STOCKSENT_CLASSIFIER_METRICS_PORT', '9300'" in text
    exposed = next(line for line in text.splitlines() if line.startswith("EXPOSE"))
    assert exposed.split()[1:] == [str(port) for port in METRICS_PORTS.values()]


def test_every_variable_the_code_reads_is_documented_in_env_example() -> None:
    documented = _documented_variables()
    missing = {
        name: sorted(where)
        for name, where in _variables_read_by_code().items()
        if name not in documented and name != "STOCKSENT_"
    }
    assert not missing, f".env.example lacks: {missing}"


def test_env_example_documents_nothing_that_is_not_read() -> None:
    read = set(_variables_read_by_code()) | COMPOSE_ONLY_VARIABLES
    stale = _documented_variables() - read
    assert not stale, f".env.example documents variables nothing reads: {sorted(stale)}"


def test_every_variable_compose_interpolates_is_documented() -> None:
    interpolated = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", COMPOSE.read_text()))
    assert interpolated, "compose interpolates nothing?"
    assert interpolated <= _documented_variables()


def test_env_example_lines_are_commented_defaults() -> None:
    """Copying it to .env changes nothing until a line is uncommented; each has a comment."""
    lines = ENV_EXAMPLE.read_text().splitlines()
    for number, line in enumerate(lines):
        if re.match(r"^#?\s*[A-Z][A-Z0-9_]*=", line):
            assert line.startswith("# "), f"line {number + 1} is active: {line}"
            previous = lines[number - 1]
            assert previous.startswith("#") and not re.match(r"^#\s*[A-Z][A-Z0-9_]*=", previous), (
                f"line {number + 1} ({line}) has no description above it"
            )
