"""One small HTTP server: `/metrics` (Prometheus), `/healthz` (alive), `/readyz` (ready)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest


class HealthServer:
    """Serves the registry and the health probes on one port, from a daemon thread."""

    def __init__(
        self,
        host: str,
        port: int,
        registry: CollectorRegistry,
        is_ready: Callable[[], tuple[bool, str]],
        is_alive: Callable[[], tuple[bool, str]] = lambda: (True, "ok"),
    ) -> None:
        handler = _handler(registry, is_ready, is_alive)
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
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


def _handler(
    registry: CollectorRegistry,
    is_ready: Callable[[], tuple[bool, str]],
    is_alive: Callable[[], tuple[bool, str]],
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._reply(200, generate_latest(registry), CONTENT_TYPE_LATEST)
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
