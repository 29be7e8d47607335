"""A local fake of the StockTwits API v2 symbol stream, for producer tests.

`GET /api/2/streams/symbol/{SYMBOL}.json` follows the real paging rules: newest first, at
most 30 messages a page, `since=ID` keeps ids > ID, `max=ID` keeps ids <= ID, and the
response carries `cursor{more, since, max}` (`since` = newest id of the page, `max` = oldest,
`more` = older messages exist within the filter) and `response{status}`. Unknown symbols
answer 404 `Symbol not found`, as the API does.

Tests script failures ahead of the normal answers (`script(...)`): a status, headers, a raw
body (HTML block page, truncated JSON), or a delay longer than the client's timeout. Every
request is recorded (symbol, query parameters, headers) for assertions.

Runs stdlib `http.server` in a daemon thread; use it as a context manager.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PAGE_SIZE = 30

BLOCK_PAGE = (
    b"<!DOCTYPE html><html><head><title>Attention Required! | Cloudflare</title></head>"
    b"<body><h1>Sorry, you have been blocked</h1></body></html>"
)


@dataclass
class Scripted:
    """One scripted answer, served instead of the normal one (optionally for one symbol)."""

    status: int = 200
    body: bytes | None = None  # None: the normal page (e.g. to add headers or a delay)
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    symbol: str | None = None
    content_type: str = "application/json; charset=utf-8"


@dataclass
class RecordedRequest:
    """What the server received."""

    symbol: str
    params: dict[str, str]
    headers: dict[str, str]
    path: str


def make_message(
    ident: int, symbol: str, *, body: str | None = None, **extra: Any
) -> dict[str, Any]:
    """A StockTwits-shaped message (2019 schema subset) with the given id and symbol."""
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(1_700_000_000 + ident % 10**6))
    message: dict[str, Any] = {
        "id": ident,
        "body": body if body is not None else f"${symbol} test message {ident}",
        "created_at": created,
        "user": {"id": 1000 + ident % 97, "username": f"tester{ident % 97}"},
        "source": {"id": 1, "title": "StockTwits", "url": "https://stocktwits.com"},
        "symbols": [{"id": 1, "symbol": symbol, "title": symbol}],
        "entities": {"sentiment": None},
    }
    message.update(extra)
    return message


class FakeStockTwits:
    """The fake API: `streams[symbol]` holds that symbol's messages (any order)."""

    def __init__(self) -> None:
        self.streams: dict[str, list[dict[str, Any]]] = {}
        self.requests: list[RecordedRequest] = []
        self.delay_s = 0.0
        """Added to every normal answer (to make a poll slow enough to interrupt)."""
        self._script: deque[Scripted] = deque()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    # ---- lifecycle --------------------------------------------------------------------

    def __enter__(self) -> FakeStockTwits:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def base_url(self) -> str:
        """What `--api-base-url` should be."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/api/2"

    # ---- test control -----------------------------------------------------------------

    def add_messages(self, symbol: str, messages: list[dict[str, Any]]) -> None:
        """Adds messages to a symbol's stream (creating the symbol)."""
        with self._lock:
            self.streams.setdefault(symbol.upper(), []).extend(messages)

    def script(self, *answers: Scripted) -> None:
        """Queues answers served, in order, before the normal ones."""
        with self._lock:
            self._script.extend(answers)

    def requests_for(self, symbol: str) -> list[RecordedRequest]:
        """The recorded requests of one symbol, in arrival order."""
        with self._lock:
            return [r for r in self.requests if r.symbol == symbol.upper()]

    # ---- serving ----------------------------------------------------------------------

    def page(
        self, symbol: str, since: int | None, max_id: int | None
    ) -> tuple[int, dict[str, Any]]:
        """The status and JSON body of a normal answer."""
        with self._lock:
            stream = self.streams.get(symbol)
            if stream is None:
                return 404, {
                    "response": {"status": 404},
                    "errors": [{"message": "Symbol not found"}],
                }
            selected = sorted(
                (
                    m
                    for m in stream
                    if (since is None or m["id"] > since) and (max_id is None or m["id"] <= max_id)
                ),
                key=lambda m: m["id"],
                reverse=True,
            )
        page = selected[:PAGE_SIZE]
        return 200, {
            "response": {"status": 200},
            "symbol": {"id": 1, "symbol": symbol, "title": symbol},
            "cursor": {
                "more": len(selected) > PAGE_SIZE,
                "since": page[0]["id"] if page else None,
                "max": page[-1]["id"] if page else None,
            },
            "messages": page,
        }

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet test output
                return

            def do_GET(self) -> None:
                parsed = urllib.parse.urlsplit(self.path)
                params = dict(urllib.parse.parse_qsl(parsed.query))
                prefix, suffix = "/api/2/streams/symbol/", ".json"
                if not (parsed.path.startswith(prefix) and parsed.path.endswith(suffix)):
                    self._send(404, b'{"response":{"status":404}}', {}, "application/json")
                    return
                symbol = urllib.parse.unquote(parsed.path[len(prefix) : -len(suffix)]).upper()
                with fake._lock:
                    fake.requests.append(
                        RecordedRequest(symbol, params, dict(self.headers.items()), self.path)
                    )
                    scripted = None
                    for index, answer in enumerate(fake._script):
                        if answer.symbol is None or answer.symbol.upper() == symbol:
                            scripted = answer
                            del fake._script[index]
                            break
                since = int(params["since"]) if "since" in params else None
                max_id = int(params["max"]) if "max" in params else None
                if scripted is not None:
                    if scripted.delay_s:
                        time.sleep(scripted.delay_s)
                    if scripted.body is None:
                        status, payload = fake.page(symbol, since, max_id)
                        body = json.dumps(payload).encode()
                        status = scripted.status if scripted.status != 200 else status
                    else:
                        status, body = scripted.status, scripted.body
                    self._send(status, body, scripted.headers, scripted.content_type)
                    return
                if fake.delay_s:
                    time.sleep(fake.delay_s)
                status, payload = fake.page(symbol, since, max_id)
                self._send(status, json.dumps(payload).encode(), {}, "application/json")

            def _send(
                self, status: int, body: bytes, headers: dict[str, str], content_type: str
            ) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(body)))
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout tests)

        return Handler
