"""Ports for brokers, metrics endpoints and test servers (stocksent.local_kafka)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from stocksent import local_kafka
from stocksent.local_kafka import free_port, free_port_pair


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _ephemeral_range(text: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Makes free_port read `text` as the kernel's ephemeral port range."""
    ranges = tmp_path / "ip_local_port_range"
    ranges.write_text(text)
    monkeypatch.setattr(local_kafka, "EPHEMERAL_PORTS", ranges)


def test_ports_come_from_below_the_ephemeral_range(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _ephemeral_range("32768\t60999\n", tmp_path, monkeypatch)
    ports = [free_port() for _ in range(20)]
    # an outgoing connection cannot take them between the probe and the real bind
    assert all(local_kafka.LISTEN_PORT_FLOOR <= p < 32767 for p in ports), ports
    assert all(_bindable(p) for p in ports)
    pair = free_port_pair()
    assert pair + 1 < 32768 and _bindable(pair) and _bindable(pair + 1)


def test_any_free_port_where_the_range_leaves_no_room_or_is_unknown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _ephemeral_range("1024 65535\n", tmp_path, monkeypatch)
    assert _bindable(free_port())
    monkeypatch.setattr(local_kafka, "EPHEMERAL_PORTS", tmp_path / "absent")
    assert _bindable(free_port())
