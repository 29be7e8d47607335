"""The metrics endpoint holds up to what reaches a port: a flood of /metrics clients (and
/healthz still answers within a second), clients that send nothing, a TLS hello, an HTTP/0.9
line, clients that hang up early (no traceback in the log)."""

from __future__ import annotations

import socket
import struct
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry

from stream.http import HealthServer
from stream.metrics import ClassifierMetrics

WATCHLIST = [f"SYM{i}" for i in range(40)]


@pytest.fixture
def server() -> Iterator[HealthServer]:
    registry = CollectorRegistry()
    metrics = ClassifierMetrics(registry, WATCHLIST)
    for i, symbol in enumerate(WATCHLIST):  # a realistic exposition: every series present
        for label in ("bullish", "bearish"):
            metrics.symbol_predictions.labels(symbol, label).inc(i)
        metrics.consumer_lag.labels("stocktwits.messages", str(i)).set(i)
    running = HealthServer(
        "127.0.0.1", 0, registry, lambda: (True, "ready"), connection_timeout_s=0.5
    ).start()
    try:
        yield running
    finally:
        running.stop()


def get(port: int, path: str, timeout: float = 10.0) -> tuple[int, bytes]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as reply:
        return int(reply.status), reply.read()


FLOOD = """
import sys, threading, time, urllib.request
port, clients, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
deadline = time.monotonic() + seconds
served, failed = [], []
def scrape():
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as r:
                r.read()
            served.append(1)
        except Exception as err:
            failed.append(repr(err))
threads = [threading.Thread(target=scrape) for _ in range(clients)]
for t in threads: t.start()
for t in threads: t.join()
print(len(served), len(failed), failed[:3])
"""


def test_healthz_answers_within_a_second_under_a_flood_of_metrics_clients(
    server: HealthServer,
) -> None:
    # the clients run in a process of their own, as they would: not on this one's GIL
    flood = subprocess.Popen(
        [sys.executable, "-c", FLOOD, str(server.port), "200", "4"],
        stdout=subprocess.PIPE,
        text=True,
    )
    latencies = []
    try:
        time.sleep(0.5)  # the clients are connecting
        while flood.poll() is None:
            started = time.monotonic()
            assert get(server.port, "/healthz", timeout=5) == (200, b"ok\n")
            latencies.append(time.monotonic() - started)
            time.sleep(0.05)
        out, _ = flood.communicate(timeout=60)
    finally:
        flood.kill()
    served, failed = out.split()[:2]
    print(f"\n/healthz max {max(latencies) * 1000:.0f} ms over {len(latencies)} probes; "
          f"/metrics served {served}, failed {failed} (200 clients, 4 s)")  # fmt: skip
    assert max(latencies) < 1.0
    assert int(failed) == 0, out
    assert int(served) >= 200


def raw_exchange(port: int, payload: bytes, wait_s: float = 3.0) -> tuple[bytes, float]:
    """Sends `payload`, reads until the server closes: (what came back, seconds)."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait_s) as conn:
        started = time.monotonic()
        if payload:
            conn.sendall(payload)
        received = b""
        while chunk := conn.recv(65536):
            received += chunk
        return received, time.monotonic() - started


def test_a_client_that_sends_nothing_is_dropped_after_the_timeout(server: HealthServer) -> None:
    received, seconds = raw_exchange(server.port, b"")
    assert received == b"" and 0.3 < seconds < 2.0


def test_a_tls_hello_gets_a_400_not_a_held_connection(server: HealthServer) -> None:
    hello = b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + bytes(range(32)) + b"\x00" * 40
    received, seconds = raw_exchange(server.port, hello)
    assert seconds < 2.0
    assert received == b"" or b"400 - Bad request" in received


def test_an_http_0_9_line_holds_its_connection_no_longer_than_the_timeout(
    server: HealthServer,
) -> None:
    # http.server waits for headers after any request line: until the timeout, no longer
    received, seconds = raw_exchange(server.port, b"GET /healthz\r\n")
    assert received == b"" and 0.3 < seconds < 2.0
    assert get(server.port, "/healthz")[0] == 200


def test_clients_that_hang_up_early_leave_no_traceback(
    server: HealthServer, capfd: pytest.CaptureFixture[str]
) -> None:
    for _ in range(30):
        conn = socket.create_connection(("127.0.0.1", server.port))
        conn.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        # close with a reset, before reading the answer
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()
    assert get(server.port, "/healthz")[0] == 200  # still serving
    time.sleep(0.5)
    assert "Traceback" not in capfd.readouterr().err
