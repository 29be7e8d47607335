"""One small HTTP server: `/metrics` (Prometheus), `/healthz` (alive), `/readyz` (ready).

Hardened for what reaches a port: a listen backlog for bursts of clients, a per-connection
timeout (a client that sends nothing, a TLS hello or half a request holds a worker for at
most that long), no traceback in the service log when a client hangs up early. Connections
are served by a fixed set of worker threads, not a thread each: 200 clients at once made
200 threads contend for the GIL (with the classifier loop), and a probe waited behind all of
them. Probes (`/healthz`, `/readyz`, seen by peeking at the request line) have workers of
their own, so they answer within a second whatever floods `/metrics`. The exposition is
rendered by one thread at a time, shared by every request that arrived while it was being
rendered.
"""

from __future__ import annotations

import logging
import queue
import socket
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

log = logging.getLogger(__name__)

LISTEN_BACKLOG = 128  # Python's default is 5: under 200 clients some waited over 10 s
CONNECTION_TIMEOUT_S = 5.0  # per socket operation of one connection
WORKERS = 8  # connections served at once (each held at most CONNECTION_TIMEOUT_S when idle)
PROBE_WORKERS = 2  # for /healthz and /readyz only
PROBE_PREFIXES = (b"GET /healthz", b"GET /readyz", b"HEAD /healthz", b"HEAD /readyz")


class HealthServer:
    """Serves the registry and the health probes on one port, from a daemon thread."""

    def __init__(
        self,
        host: str,
        port: int,
        registry: CollectorRegistry,
        is_ready: Callable[[], tuple[bool, str]],
        is_alive: Callable[[], tuple[bool, str]] = lambda: (True, "ok"),
        connection_timeout_s: float = CONNECTION_TIMEOUT_S,
    ) -> None:
        handler = _handler(Exposition(registry), is_ready, is_alive, connection_timeout_s)
        self._server = _Server((host, port), handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="metrics-http", daemon=True
        )

    @property
    def port(self) -> int:
        """The bound port (useful when started on port 0 in tests)."""
        return int(self._server.server_address[1])

    def start(self) -> HealthServer:
        """Starts serving in the background."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stops serving and releases the port."""
        self._server.shutdown()
        self._server.server_close()


class Exposition:
    """The registry's text exposition, rendered by one thread at a time. A request waits for
    a render that began after it arrived and takes its result, so none is answered with
    numbers older than itself."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry
        self._lock = threading.Lock()
        self._body = b""
        self._rendered_at = float("-inf")  # when the render of `_body` began
        self.renders = 0

    def render(self) -> bytes:
        """The exposition as of this call or later."""
        asked = time.monotonic()
        with self._lock:
            if self._rendered_at >= asked:
                return self._body
            started = time.monotonic()
            self._body = generate_latest(self._registry)
            self._rendered_at = started
            self.renders += 1
            return self._body


class _Workers:
    """A fixed set of daemon threads serving connections from a queue."""

    def __init__(self, server: _Server, count: int, name: str) -> None:
        self._server = server
        self._queue: queue.SimpleQueue[tuple[Any, Any] | None] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True)
            for i in range(count)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, request: Any, client_address: Any) -> None:
        self._queue.put((request, client_address))

    def stop(self) -> None:
        for _ in self._threads:
            self._queue.put(None)

    def _work(self) -> None:
        server = self._server
        while (job := self._queue.get()) is not None:
            request, client_address = job
            try:
                server.finish_request(request, client_address)
            except Exception:
                server.handle_error(request, client_address)
            finally:
                server.shutdown_request(request)


class _Server(HTTPServer):
    request_queue_size = LISTEN_BACKLOG

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler)
        self._workers = _Workers(self, WORKERS, "metrics-http")
        self._probes = _Workers(self, PROBE_WORKERS, "health-probe")

    def process_request(self, request: Any, client_address: Any) -> None:
        """Hands the connection to a worker: a probe's worker when its request line (already
        sent, as probes do at once) asks for /healthz or /readyz."""
        (self._probes if _is_probe(request) else self._workers).submit(request, client_address)

    def server_close(self) -> None:
        super().server_close()
        self._workers.stop()
        self._probes.stop()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up or times out is not the service's error: no traceback."""
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError | TimeoutError):
            return
        log.warning(
            "metrics endpoint: %s from %s: %s", type(error).__name__, client_address[0], error
        )


def _is_probe(request: socket.socket) -> bool:
    try:
        start = request.recv(16, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except OSError:  # nothing sent yet, or gone
        return False
    return start.startswith(PROBE_PREFIXES)


def _handler(
    exposition: Exposition,
    is_ready: Callable[[], tuple[bool, str]],
    is_alive: Callable[[], tuple[bool, str]],
    connection_timeout_s: float,
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        timeout = connection_timeout_s  # applied to the socket by StreamRequestHandler

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._reply(200, exposition.render(), CONTENT_TYPE_LATEST)
            elif path == "/healthz":
                alive, why = is_alive()
                self._reply(200 if alive else 503, (why + "\n").encode())
            elif path == "/readyz":
                ready, why = is_ready()
                self._reply(200 if ready else 503, (why + "\n").encode())
            else:
                self._reply(404, b"not found: try /metrics, /healthz or /readyz\n")

        def _reply(self, status: int, body: bytes, content_type: str = "text/plain") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # scrapes every few seconds would drown the service log

    return Handler
