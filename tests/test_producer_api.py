"""The API client turns every kind of answer into the right `RequestOutcome`, and never
leaks the access token into logs."""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Iterator

import pytest

from producers.stocktwits_api import RequestOutcome, StockTwitsClient, parse_rate_limit
from tests.fake_stocktwits import BLOCK_PAGE, FakeStockTwits, Scripted, make_message

TOKEN = "tok-SECRET-9f8e7d6c5b4a"


@pytest.fixture
def fake() -> Iterator[FakeStockTwits]:
    with FakeStockTwits() as server:
        server.add_messages("SPY", [make_message(i, "SPY") for i in range(1, 41)])
        yield server


def client(fake: FakeStockTwits, **kwargs: object) -> StockTwitsClient:
    return StockTwitsClient(fake.base_url, timeout_s=kwargs.pop("timeout_s", 2.0), **kwargs)  # type: ignore[arg-type]


def test_ok_page_is_newest_first_and_parsed(fake: FakeStockTwits) -> None:
    response = client(fake).fetch_symbol("SPY")
    assert response.outcome is RequestOutcome.OK
    assert response.status == 200
    assert [m["id"] for m in response.messages] == list(range(40, 10, -1))
    assert response.body is not None and response.body["cursor"] == {
        "more": True,
        "since": 40,
        "max": 11,
    }


def test_since_and_max_are_sent(fake: FakeStockTwits) -> None:
    response = client(fake).fetch_symbol("SPY", since=5, max_id=20)
    assert [m["id"] for m in response.messages] == list(range(20, 5, -1))
    assert fake.requests[-1].params == {"since": "5", "max": "20"}


def test_empty_page_is_ok_with_no_messages(fake: FakeStockTwits) -> None:
    response = client(fake).fetch_symbol("SPY", since=40)
    assert response.outcome is RequestOutcome.OK
    assert response.messages == []


@pytest.mark.parametrize(
    ("scripted", "outcome", "status"),
    [
        (
            Scripted(
                429, b'{"response":{"status":429},"errors":[{"message":"Rate limit exceeded"}]}'
            ),
            RequestOutcome.RATE_LIMITED,
            429,
        ),
        (Scripted(503, b'{"response":{"status":503}}'), RequestOutcome.SERVER_ERROR, 503),
        (
            Scripted(502, b"<html>bad gateway</html>", content_type="text/html"),
            RequestOutcome.SERVER_ERROR,
            502,
        ),
        (Scripted(403, BLOCK_PAGE, content_type="text/html"), RequestOutcome.BLOCKED, 403),
        (Scripted(200, BLOCK_PAGE, content_type="text/html"), RequestOutcome.BLOCKED, 200),
        (
            Scripted(200, b'{"response":{"status":200},"messages":[{"id":1,"bo'),
            RequestOutcome.ERROR,
            200,
        ),
        (Scripted(200, b""), RequestOutcome.ERROR, 200),
        (
            Scripted(401, b'{"response":{"status":401},"errors":[{"message":"Unauthorized"}]}'),
            RequestOutcome.CLIENT_ERROR,
            401,
        ),
    ],
    ids=["429", "503", "502-html", "403-html", "200-html", "truncated", "empty-body", "401"],
)
def test_outcomes(
    fake: FakeStockTwits, scripted: Scripted, outcome: RequestOutcome, status: int
) -> None:
    fake.script(scripted)
    response = client(fake).fetch_symbol("SPY")
    assert response.outcome is outcome
    assert response.status == status
    assert response.messages == []  # nothing but an OK answer is ever data


def test_unknown_symbol_is_not_found(fake: FakeStockTwits) -> None:
    response = client(fake).fetch_symbol("NOPE")
    assert response.outcome is RequestOutcome.CLIENT_ERROR
    assert response.symbol_not_found
    assert "Symbol not found" in response.detail


def test_timeout_is_an_error(fake: FakeStockTwits) -> None:
    fake.script(Scripted(delay_s=1.0))
    started = time.monotonic()
    response = client(fake, timeout_s=0.2).fetch_symbol("SPY")
    assert response.outcome is RequestOutcome.ERROR
    assert "timeout" in response.detail
    assert time.monotonic() - started < 0.9


def test_connection_refused_is_an_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nobody listens there
    response = StockTwitsClient(f"http://127.0.0.1:{port}/api/2", timeout_s=1).fetch_symbol("SPY")
    assert response.outcome is RequestOutcome.ERROR
    assert response.status == 0


def test_rate_limit_headers_are_read(fake: FakeStockTwits) -> None:
    reset = int(time.time()) + 600
    fake.script(
        Scripted(
            headers={
                "X-RateLimit-Limit": "200",
                "X-RateLimit-Remaining": "17",
                "X-RateLimit-Reset": str(reset),
            }
        )
    )
    response = client(fake).fetch_symbol("SPY")
    assert response.outcome is RequestOutcome.OK
    assert (response.rate_limit.limit, response.rate_limit.remaining) == (200, 17)
    assert response.rate_limit.reset_at == reset


def test_relative_reset_is_read_as_seconds_from_now() -> None:
    limit = parse_rate_limit(
        {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "30"}, 1_000_000_000.0
    )
    assert limit.reset_at == 1_000_000_030.0


def test_token_and_user_agent_are_sent_but_never_logged(
    fake: FakeStockTwits, caplog: pytest.LogCaptureFixture
) -> None:
    fake.script(
        Scripted(503, b"{}"),
        Scripted(403, BLOCK_PAGE, content_type="text/html"),
        Scripted(200, b'{"messages":[{"id":'),
        Scripted(delay_s=0.5),
    )
    api = client(fake, token=TOKEN, user_agent="Mozilla/5.0 test-agent", timeout_s=0.2)
    with caplog.at_level(logging.DEBUG):
        outcomes = [api.fetch_symbol("SPY", since=1).outcome for _ in range(5)]
        outcomes.append(api.fetch_symbol("NOPE").outcome)
    assert outcomes == [
        RequestOutcome.SERVER_ERROR,
        RequestOutcome.BLOCKED,
        RequestOutcome.ERROR,
        RequestOutcome.ERROR,
        RequestOutcome.OK,
        RequestOutcome.CLIENT_ERROR,
    ]
    assert fake.requests[0].params["access_token"] == TOKEN
    assert fake.requests[0].headers["User-Agent"] == "Mozilla/5.0 test-agent"
    assert caplog.records, "the client logs its requests"
    logged = "\n".join(r.getMessage() for r in caplog.records) + caplog.text
    assert TOKEN not in logged
    assert "/streams/symbol/SPY.json?since=1" in logged  # the redacted URL is what is logged


def test_unknown_fields_are_kept(fake: FakeStockTwits) -> None:
    odd = make_message(99, "ODD", prices=[{"price": "1.5"}], future_field={"x": [1, None]})
    fake.add_messages("ODD", [odd])
    response = client(fake).fetch_symbol("ODD")
    assert response.messages == [json.loads(json.dumps(odd))]
