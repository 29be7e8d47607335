"""HTTP client for `GET {base}/streams/symbol/{SYMBOL}.json`, returning a typed outcome.

Every answer, good or bad, becomes one `ApiResponse` whose `outcome` is a member of the
closed enum `RequestOutcome`; the poller branches on it, the metrics use its value as the
`outcome` label and the tests assert on it, so the three can never disagree.

Classification (why each case lands where it does):
- 2xx with a JSON object body                 -> OK
- 429                                         -> RATE_LIMITED (wait for the reset, or back off)
- 2xx/4xx with a body that is not JSON        -> BLOCKED (Cloudflare answers scripts with an
  HTML page; treating it as data or retrying hard would only prolong the ban)
- other 4xx with JSON (404 "Symbol not found") -> CLIENT_ERROR
- 5xx (whatever the body)                     -> SERVER_ERROR
- timeouts, refused/reset connections, a body cut short (truncated JSON: starts like JSON
  but does not parse), an empty 2xx body     -> ERROR (transient: back off and retry)

The access token is sent as the `access_token` query parameter (the API v2 convention). It
never appears in a log line, an exception message or `ApiResponse`: logs use `redacted_url`.
"""

from __future__ import annotations

import enum
import http.client
import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

log = logging.getLogger(__name__)

DEFAULT_API_BASE_URL = "https://api.stocktwits.com/api/2"
DEFAULT_USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0 Safari/537.36"
)
PAGE_SIZE = 30
"""The API returns at most this many messages a page; a full page means more may wait."""


class RequestOutcome(enum.Enum):
    """What one API request came to. The value is the metrics label (docs/CONTRACTS.md)."""

    OK = "2xx"
    RATE_LIMITED = "429"
    CLIENT_ERROR = "4xx"
    SERVER_ERROR = "5xx"
    BLOCKED = "blocked"
    ERROR = "error"

    @property
    def transient(self) -> bool:
        """Worth retrying the same request later with a backoff."""
        return self in (RequestOutcome.SERVER_ERROR, RequestOutcome.ERROR)


@dataclass(frozen=True)
class RateLimit:
    """The rate-limit headers of one answer, when the server sent them."""

    limit: int | None = None
    remaining: int | None = None
    reset_at: float | None = None
    """Epoch seconds at which the window resets."""


@dataclass(frozen=True)
class ApiResponse:
    """One request's result: outcome, HTTP status (0 without one), parsed body, headers."""

    outcome: RequestOutcome
    status: int
    seconds: float
    body: dict[str, Any] | None = None
    rate_limit: RateLimit = field(default_factory=RateLimit)
    retry_after: float | None = None
    detail: str = ""
    """A short, token-free reason for logs."""

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The `messages` array of an OK answer (empty otherwise or when missing)."""
        if self.body is None:
            return []
        messages = self.body.get("messages")
        return [m for m in messages if isinstance(m, dict)] if isinstance(messages, list) else []

    @property
    def symbol_not_found(self) -> bool:
        """The API says the symbol does not exist (404): skip it, do not retry."""
        return self.outcome is RequestOutcome.CLIENT_ERROR and self.status == 404


class StockTwitsClient:
    """Fetches symbol streams with a browser-like User-Agent and an optional token."""

    def __init__(
        self,
        base_url: str = DEFAULT_API_BASE_URL,
        *,
        token: str | None = None,
        user_agent: str = DEFAULT_USER_AGENT,
        timeout_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token or None
        self.user_agent = user_agent
        self.timeout_s = timeout_s
        self._clock = clock
        self._wall_clock = wall_clock

    def symbol_url(self, symbol: str, params: Mapping[str, int]) -> str:
        """The URL without the token: safe to log."""
        query = urllib.parse.urlencode(params)
        path = f"{self.base_url}/streams/symbol/{urllib.parse.quote(symbol, safe='')}.json"
        return f"{path}?{query}" if query else path

    def fetch_symbol(
        self, symbol: str, *, since: int | None = None, max_id: int | None = None
    ) -> ApiResponse:
        """One page of a symbol stream: newest first, `since` < id <= `max_id`."""
        params: dict[str, int] = {}
        if since is not None:
            params["since"] = since
        if max_id is not None:
            params["max"] = max_id
        redacted_url = self.symbol_url(symbol, params)
        url = redacted_url
        if self._token:
            sep = "&" if "?" in url else "?"
            url = f"{url}{sep}{urllib.parse.urlencode({'access_token': self._token})}"
        request = urllib.request.Request(
            url,
            headers={
                "User-Agent": self.user_agent,
                "Accept": "application/json, text/plain, */*",
                "Accept-Language": "en-US,en;q=0.9",
            },
        )
        started = self._clock()
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as answer:
                status = answer.status
                headers = answer.headers
                raw = answer.read()
        except urllib.error.HTTPError as err:
            status, headers = err.code, err.headers
            try:
                raw = err.read()
            except (OSError, http.client.HTTPException):
                raw = b""
        except TimeoutError:
            return self._failed(started, "timeout", redacted_url)
        except urllib.error.URLError as err:
            reason = (
                "timeout" if isinstance(err.reason, TimeoutError) else type(err.reason).__name__
            )
            return self._failed(started, f"connection error ({reason})", redacted_url)
        except (OSError, http.client.HTTPException) as err:
            # IncompleteRead (body shorter than Content-Length), resets mid-body, bad status line
            return self._failed(started, f"transport error ({type(err).__name__})", redacted_url)
        seconds = self._clock() - started
        return self._classify(status, headers, raw, seconds, redacted_url)

    def _failed(self, started: float, detail: str, redacted_url: str) -> ApiResponse:
        seconds = self._clock() - started
        log.warning("GET %s failed: %s", redacted_url, detail)
        return ApiResponse(RequestOutcome.ERROR, 0, seconds, detail=detail)

    def _classify(
        self,
        status: int,
        headers: Mapping[str, str] | None,
        raw: bytes,
        seconds: float,
        redacted_url: str,
    ) -> ApiResponse:
        headers = headers or {}
        rate_limit = parse_rate_limit(headers, self._wall_clock())
        retry_after = _parse_float(headers.get("Retry-After"))
        body, parse_problem = _parse_json_object(raw)
        # Status first for 429 and 5xx: their bodies (JSON or an error page) change nothing.
        if status == 429:
            outcome, detail = RequestOutcome.RATE_LIMITED, "HTTP 429"
        elif status >= 500:
            outcome, detail = RequestOutcome.SERVER_ERROR, f"HTTP {status}"
        elif parse_problem == "not json":
            outcome, detail = RequestOutcome.BLOCKED, f"HTTP {status} with a non-JSON body"
        elif status >= 400:
            outcome, detail = RequestOutcome.CLIENT_ERROR, f"HTTP {status}{_api_errors(body)}"
        elif parse_problem:
            outcome, detail = RequestOutcome.ERROR, f"HTTP {status} with {parse_problem}"
        else:
            outcome, detail = RequestOutcome.OK, f"HTTP {status}"
        level = logging.DEBUG if outcome is RequestOutcome.OK else logging.WARNING
        log.log(level, "GET %s -> %s (%s, %.3fs)", redacted_url, outcome.value, detail, seconds)
        return ApiResponse(
            outcome,
            status,
            seconds,
            body=body if outcome is RequestOutcome.OK else None,
            rate_limit=rate_limit,
            retry_after=retry_after,
            detail=detail,
        )


def parse_rate_limit(headers: Mapping[str, str], now_epoch: float) -> RateLimit:
    """X-RateLimit-Limit/-Remaining/-Reset; a small reset value is read as seconds from now."""
    limit = _parse_int(headers.get("X-RateLimit-Limit"))
    remaining = _parse_int(headers.get("X-RateLimit-Remaining"))
    reset = _parse_float(headers.get("X-RateLimit-Reset"))
    # Some servers send an epoch time, others a delay; an epoch is far larger than a day.
    if reset is not None and reset < 10 * 365 * 86400:
        reset = now_epoch + reset
    return RateLimit(limit, remaining, reset)


def _parse_int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _parse_float(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _parse_json_object(raw: bytes) -> tuple[dict[str, Any] | None, str]:
    """(object, "") when the body is a JSON object; else (None, what is wrong)."""
    stripped = raw.lstrip()
    if not stripped:
        return None, "an empty body"
    if not stripped.startswith((b"{", b"[")):
        return None, "not json"
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        # It began like JSON: a body cut short in transit, not a block page.
        return None, "truncated or invalid JSON"
    if not isinstance(value, dict):
        return None, "a JSON body that is not an object"
    return value, ""


def _api_errors(body: dict[str, Any] | None) -> str:
    errors = body.get("errors") if body else None
    if not isinstance(errors, list):
        return ""
    texts = [str(e.get("message")) for e in errors if isinstance(e, dict) and e.get("message")]
    return f": {'; '.join(texts)}" if texts else ""
