"""The metrics endpoint every service serves: its address option, and one table of the
default port of each service (compose, the Dockerfile, Prometheus' local scrape file and the
reference are checked against it by the tests)."""

from __future__ import annotations

from typing import Final, Literal

from common.options import Option, non_empty_text, port

Service = Literal["classifier", "producer", "learner", "aggregator"]

METRICS_PORTS: Final[dict[Service, int]] = {
    "classifier": 9300,
    "producer": 9301,
    "learner": 9302,
    "aggregator": 9303,
}

_ENDPOINTS: Final[dict[Service, str]] = {
    "classifier": "/metrics, /healthz, /readyz",
    "producer": "/metrics",
    "learner": "/metrics, /healthz",
    "aggregator": "/metrics, /healthz, /readyz",
}

METRICS_HOST = Option(
    "metrics_host",
    non_empty_text,
    "127.0.0.1",
    "address the metrics endpoint of a service binds to (/metrics, and /healthz, /readyz "
    "where the service has them)",
)


def metrics_port_option(service: Service) -> Option:
    """The port option of `service`'s metrics endpoint: `STOCKSENT_<SERVICE>_METRICS_PORT`, so a
    variable read by several commands never means two ports."""
    return Option(
        f"{service}_metrics_port",
        port,
        METRICS_PORTS[service],
        f"port of the {service}'s {_ENDPOINTS[service]} (0 disables)",
    )
