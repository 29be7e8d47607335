"""Kafka client settings shared by the producer and the classifier: connection and security
options, and the producer guarantees (idempotent, acks=all). One place, both services."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from common.options import (
    Option,
    Secret,
    SettingsError,
    existing_file,
    non_empty_text,
    positive_float,
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

CONNECTION_OPTIONS: tuple[Option, ...] = (
    Option("bootstrap_servers", non_empty_text, "127.0.0.1:9092", "Kafka bootstrap servers"),
    Option(
        "security_protocol",
        text,
        "PLAINTEXT",
        "Kafka security protocol",
        choices=SECURITY_PROTOCOLS,
    ),
    Option("sasl_mechanism", text, "", "SASL mechanism", choices=("", *SASL_MECHANISMS)),
    Option("sasl_username", text, "", "SASL user name"),
    Option("sasl_password", text, "", "SASL password (prefer --sasl-password-file)", secret=True),
    Option("sasl_password_file", existing_file, None, "file holding the SASL password"),
    Option("ssl_cafile", existing_file, None, "CA bundle that signs the brokers' certificates"),
    Option("ssl_certfile", existing_file, None, "client certificate (PEM) for mutual TLS"),
    Option("ssl_keyfile", existing_file, None, "client private key (PEM) for mutual TLS"),
    Option(
        "connect_timeout",
        positive_float,
        10.0,
        "seconds to wait for Kafka at start-up before failing with exit code 3",
    ),
)


COMPRESSION_OPTION = Option(
    "compression_type",
    text,
    "none",
    "compression of the record batches published (Kafka's compression.type)",
    choices=COMPRESSION_TYPES,
)


def client_config(settings: Mapping[str, Any]) -> dict[str, Any]:
    """kafka-python keyword arguments common to consumers, producers and admin clients."""
    config: dict[str, Any] = {
        "bootstrap_servers": [s.strip() for s in settings["bootstrap_servers"].split(",")],
        "security_protocol": settings.get("security_protocol") or "PLAINTEXT",
        "reconnect_backoff_ms": RECONNECT_BACKOFF_MS,
        "reconnect_backoff_max_ms": RECONNECT_BACKOFF_MAX_MS,
    }
    if settings.get("sasl_mechanism"):
        config["sasl_mechanism"] = settings["sasl_mechanism"]
        config["sasl_plain_username"] = settings.get("sasl_username") or None
        config["sasl_plain_password"] = _sasl_password(settings)
    for key in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
        if settings.get(key):
            config[key] = str(settings[key])
    return config


def producer_config(settings: Mapping[str, Any], **overrides: Any) -> dict[str, Any]:
    """An idempotent producer that waits for all in-sync replicas: no loss, no broker dupes."""
    config = client_config(settings)
    config.update(
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        batch_size=256 * 1024,
        max_in_flight_requests_per_connection=5,
        retries=2**31 - 1,
    )
    compression = settings.get("compression_type")
    if compression and compression != "none":
        config["compression_type"] = compression
    config.update(overrides)
    return config


def _sasl_password(settings: Mapping[str, Any]) -> str | None:
    path = settings.get("sasl_password_file")
    if path:
        try:
            return Path(path).read_text(encoding="utf-8").strip()
        except OSError as err:
            raise SettingsError(f"--sasl-password-file: cannot read {path}: {err}") from None
    secret = settings.get("sasl_password")
    if isinstance(secret, Secret):
        return secret.reveal() or None
    return secret or None
