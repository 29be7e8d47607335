"""Kafka client settings shared by the producer and the classifier: connection and security
options, and the producer guarantees (idempotent, acks=all). One place, both services."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.options import (
    Option,
    Secret,
    SettingsError,
    existing_file,
    non_empty_text,
    options_of,
    positive_float,
    setting,
    shared,
    text,
)

SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER")
# Every codec Kafka has; consumers read them all (the codec libraries are dependencies).
COMPRESSION_TYPES = ("none", "gzip", "snappy", "lz4", "zstd")
# kafka-python's reconnect backoff grows to 30 s by default, which kept the classifier
# silent long after a broker restart; the Java client caps it at 1 s, and so do we.
RECONNECT_BACKOFF_MS = 50
RECONNECT_BACKOFF_MAX_MS = 1000
DEFAULT_CONNECT_TIMEOUT_S = 10.0


CONNECT_TIMEOUT_OPTION = Option(
    "connect_timeout",
    positive_float,
    DEFAULT_CONNECT_TIMEOUT_S,
    "seconds to wait for Kafka at start-up before failing with exit code 3",
)


@dataclass(frozen=True)
class KafkaConnection:
    """Where Kafka is and how to authenticate: the options every command that talks to Kafka
    takes (a `group` of its settings)."""

    bootstrap_servers: str = setting(non_empty_text, "127.0.0.1:9092", "Kafka bootstrap servers")
    security_protocol: str = setting(
        text, "PLAINTEXT", "Kafka security protocol", choices=SECURITY_PROTOCOLS
    )
    sasl_mechanism: str = setting(text, "", "SASL mechanism", choices=("", *SASL_MECHANISMS))
    sasl_username: str = setting(text, "", "SASL user name")
    sasl_password: Secret | str = setting(
        text, "", "SASL password (prefer --sasl-password-file)", secret=True
    )
    sasl_password_file: Path | None = setting(existing_file, None, "file holding the SASL password")
    ssl_cafile: Path | None = setting(
        existing_file, None, "CA bundle that signs the brokers' certificates"
    )
    ssl_certfile: Path | None = setting(
        existing_file, None, "client certificate (PEM) for mutual TLS"
    )
    ssl_keyfile: Path | None = setting(
        existing_file, None, "client private key (PEM) for mutual TLS"
    )
    connect_timeout: float = shared(CONNECT_TIMEOUT_OPTION)


CONNECTION_OPTIONS: tuple[Option, ...] = options_of(KafkaConnection)

COMPRESSION_OPTION = Option(
    "compression_type",
    text,
    "none",
    "compression of the record batches published (Kafka's compression.type)",
    choices=COMPRESSION_TYPES,
)


def client_config(connection: KafkaConnection) -> dict[str, Any]:
    """kafka-python keyword arguments common to consumers, producers and admin clients."""
    config: dict[str, Any] = {
        "bootstrap_servers": [s.strip() for s in connection.bootstrap_servers.split(",")],
        "security_protocol": connection.security_protocol or "PLAINTEXT",
        "reconnect_backoff_ms": RECONNECT_BACKOFF_MS,
        "reconnect_backoff_max_ms": RECONNECT_BACKOFF_MAX_MS,
    }
    if connection.sasl_mechanism:
        config["sasl_mechanism"] = connection.sasl_mechanism
        config["sasl_plain_username"] = connection.sasl_username or None
        config["sasl_plain_password"] = _sasl_password(connection)
    for key, path in (
        ("ssl_cafile", connection.ssl_cafile),
        ("ssl_certfile", connection.ssl_certfile),
        ("ssl_keyfile", connection.ssl_keyfile),
    ):
        if path:
            config[key] = str(path)
    return config


def producer_config(
    connection: KafkaConnection, compression_type: str = "none", **overrides: Any
) -> dict[str, Any]:
    """An idempotent producer that waits for all in-sync replicas: no loss, no broker dupes."""
    config = client_config(connection)
    config.update(
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        batch_size=256 * 1024,
        max_in_flight_requests_per_connection=5,
        retries=2**31 - 1,
    )
    if compression_type != "none":
        config["compression_type"] = compression_type
    config.update(overrides)
    return config


def _sasl_password(connection: KafkaConnection) -> str | None:
    path = connection.sasl_password_file
    if path:
        try:
            return Path(path).read_text(encoding="utf-8").strip()
        except OSError as err:
            raise SettingsError(f"--sasl-password-file: cannot read {path}: {err}") from None
    secret = connection.sasl_password
    if isinstance(secret, Secret):
        return secret.reveal() or None
    return secret or None
