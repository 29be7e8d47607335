"""The live poller against the fake API: paging without gaps, dedupe, restarts, and every
failure answer handled as specified with the metrics counting it. No broker: an in-memory
sink stands in for Kafka (the broker path is covered in tests/integration)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from producers.backoff import Backoff, CircuitBreaker
from producers.budget import RequestBudget
from producers.metrics import ProducerMetrics, Source
from producers.poller import DedupeWindow, LivePoller
from producers.publisher import PublishError
from producers.state import FileStateStore
from producers.stocktwits_api import RequestOutcome, StockTwitsClient
from tests.fake_stocktwits import BLOCK_PAGE, FakeStockTwits, Scripted, make_message


class FakeClock:
    """Monotonic seconds that move only when the poller sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


class ListSink:
    """An in-memory `MessageSink`: records what was sent; flush can be made to fail."""

    def __init__(self) -> None:
        self.records: list[tuple[int, str | None, Source]] = []
        self._queued: list[tuple[int, str | None, Source]] = []
        self.fail_flush = False
        self.flushes = 0

    def send(
        self, message: dict[str, Any], *, source: Source, symbol: str | None, fetched_at: str
    ) -> None:
        assert fetched_at.endswith("Z")
        self._queued.append((message["id"], symbol, source))

    def flush(self) -> int:
        self.flushes += 1
        if self.fail_flush:
            self._queued.clear()
            raise PublishError("broker said no")
        done, self._queued = self._queued, []
        self.records.extend(done)
        return len(done)

    def close(self) -> None:
        self.flush()

    @property
    def ids(self) -> list[int]:
        return [ident for ident, _, _ in self.records]


@pytest.fixture
def fake() -> Iterator[FakeStockTwits]:
    with FakeStockTwits() as server:
        yield server


class Harness:
    """A poller wired to the fake API, a fake clock and a fresh registry."""

    def __init__(self, fake: FakeStockTwits, state_path: Path, symbols: list[str], **kwargs: Any):
        self.clock = FakeClock()
        self.registry = CollectorRegistry()
        self.metrics = ProducerMetrics(self.registry, watchlist=symbols)
        self.sink = ListSink()
        self.store = FileStateStore(state_path)
        per_hour = kwargs.pop("requests_per_hour", 3600)
        self.budget = RequestBudget(per_hour, clock=self.clock)
        self.breaker = CircuitBreaker(kwargs.pop("cooldown_s", 900.0), clock=self.clock)
        self.poller = LivePoller(
            StockTwitsClient(fake.base_url, timeout_s=kwargs.pop("timeout_s", 2.0)),
            self.sink,
            self.store,
            self.metrics,
            symbols,
            budget=self.budget,
            backoff=Backoff(base_s=1.0, cap_s=60.0, rng=lambda: 1.0),
            breaker=self.breaker,
            sleep=self.clock.sleep,
            **kwargs,
        )

    def value(self, name: str, **labels: str) -> float:
        found = self.registry.get_sample_value(name, labels or None)
        return 0.0 if found is None else found

    def requests(self, outcome: str) -> float:
        return self.value("stocksent_producer_requests_total", outcome=outcome)


def messages(symbol: str, ids: range | list[int]) -> list[dict[str, Any]]:
    return [make_message(i, symbol) for i in ids]


def test_75_new_messages_are_published_once_in_order_via_max_paging(
    fake: FakeStockTwits, tmp_path: Path
) -> None:
    fake.add_messages("SPY", messages("SPY", range(1000, 1010)))
    h = Harness(fake, tmp_path / "state.json", ["SPY"])
    h.poller.run_once()
    assert h.sink.ids == list(range(1000, 1010))
    assert h.store.load().symbols["SPY"].high_water_id == 1009

    fake.add_messages("SPY", messages("SPY", range(1010, 1085)))  # 75 new between polls
    fake.requests.clear()
    h.poller.run_once()
    new = h.sink.ids[10:]
    assert new == list(range(1010, 1085))  # all 75, once, oldest first
    assert [r.params for r in fake.requests] == [
        {"since": "1009"},
        {"since": "1009", "max": "1054"},  # page 1 held 1084..1055
        {"since": "1009", "max": "1024"},  # page 2 held 1054..1025; page 3 (15) is not full
    ]
    assert h.store.load().symbols["SPY"].high_water_id == 1084
    assert h.value("stocksent_producer_messages_fetched_total") == 85
    assert h.requests("2xx") == 4
    h.poller.run_once()  # nothing new: one request, nothing published
    assert len(h.sink.ids) == 85


def test_first_poll_backfills_the_configured_number_of_pages(
    fake: FakeStockTwits, tmp_path: Path
) -> None:
    fake.add_messages("AAPL", messages("AAPL", range(1, 101)))
    h = Harness(fake, tmp_path / "state.json", ["AAPL"], backfill_pages=2)
    h.poller.run_once()
    assert h.sink.ids == list(range(41, 101))
    assert [r.params for r in fake.requests] == [{}, {"max": "70"}]
    assert h.store.load().symbols["AAPL"].high_water_id == 100


def test_interrupted_paging_is_resumed_after_a_restart_without_gap_or_duplicate(
    fake: FakeStockTwits, tmp_path: Path
) -> None:
    state = tmp_path / "state.json"
    fake.add_messages("TSLA", messages("TSLA", range(500, 505)))
    first = Harness(fake, state, ["TSLA"], max_attempts=2)
    first.poller.run_once()
    fake.add_messages("TSLA", messages("TSLA", range(505, 605)))  # 100 new: 4 pages
    # Page 1 is served, then page 2 fails twice: this poll gives up mid-way.
    fake.script(Scripted(), Scripted(503, b"{}"), Scripted(503, b"{}"))
    result = first.poller.poll_symbol("TSLA")
    assert not result.complete and result.published == 30
    saved = first.store.load().symbols["TSLA"]
    assert (saved.high_water_id, saved.pending_top_id, saved.pending_max_id) == (504, 604, 574)

    # More arrive while it is down. A new process with the same state file finishes the
    # range first, then polls forward in the same poll.
    fake.add_messages("TSLA", messages("TSLA", range(605, 610)))
    second = Harness(fake, state, ["TSLA"])
    fake.requests.clear()
    second.poller.run_once()
    assert [r.params for r in fake.requests] == [
        {"since": "504", "max": "574"},
        {"since": "504", "max": "544"},
        {"since": "504", "max": "514"},  # 10 left: not full, the range is done
        {"since": "604"},
    ]
    published = first.sink.ids + second.sink.ids
    assert sorted(published) == list(range(500, 610))
    assert len(published) == len(set(published))
    saved = second.store.load().symbols["TSLA"]
    assert saved.high_water_id == 609 and not saved.has_gap


def test_same_message_under_two_symbols_is_published_once(
    fake: FakeStockTwits, tmp_path: Path
) -> None:
    shared = make_message(77, "SPY", symbols=[{"symbol": "SPY"}, {"symbol": "QQQ"}])
    fake.add_messages("SPY", [*messages("SPY", [70, 71]), shared])
    fake.add_messages("QQQ", [*messages("QQQ", [72]), shared])
    h = Harness(fake, tmp_path / "state.json", ["SPY", "QQQ"])
    h.poller.run_once()
    assert sorted(h.sink.ids) == [70, 71, 72, 77]
    assert [s for i, s, _ in h.sink.records if i == 77] == ["SPY"]
    assert h.value("stocksent_producer_duplicates_skipped_total") == 1
    # The dedupe memory survives a restart (persisted with the state).
    fake.add_messages("QQQ", [make_message(78, "QQQ")])
    fake.add_messages("DIA", [shared])
    again = Harness(fake, tmp_path / "state.json", ["DIA", "QQQ"])
    again.poller.run_once()
    assert again.sink.ids == [78]
    assert again.value("stocksent_producer_duplicates_skipped_total") == 1


def test_429_with_reset_header_waits_until_the_reset(fake: FakeStockTwits, tmp_path: Path) -> None:
    fake.add_messages("SPY", messages("SPY", range(1, 4)))
    reset = int(time.time()) + 120
    fake.script(
        Scripted(
            429,
            b'{"response":{"status":429},"errors":[{"message":"Rate limit exceeded"}]}',
            {
                "X-RateLimit-Limit": "200",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": str(reset),
            },
        )
    )
    h = Harness(fake, tmp_path / "state.json", ["SPY"])
    h.poller.run_once()
    assert h.sink.ids == [1, 2, 3]
    assert h.requests("429") == 1 and h.requests("2xx") == 1
    assert 115 <= sum(h.clock.slept) <= 125  # waited for the server's reset, no longer


def test_429_without_headers_backs_off(fake: FakeStockTwits, tmp_path: Path) -> None:
    fake.add_messages("SPY", messages("SPY", range(1, 4)))
    body = b'{"response":{"status":429},"errors":[{"message":"Rate limit exceeded"}]}'
    fake.script(Scripted(429, body), Scripted(429, body))
    h = Harness(fake, tmp_path / "state.json", ["SPY"])
    h.poller.run_once()
    assert h.sink.ids == [1, 2, 3]
    assert h.requests("429") == 2
    assert h.clock.slept == [1.0, 2.0]  # exponential (jitter pinned to the top of its range)


def test_429_with_retry_after_waits_that_long(fake: FakeStockTwits, tmp_path: Path) -> None:
    fake.add_messages("SPY", messages("SPY", [1]))
    fake.script(Scripted(429, b'{"response":{"status":429}}', {"Retry-After": "42"}))
    h = Harness(fake, tmp_path / "state.json", ["SPY"])
    h.poller.run_once()
    assert h.sink.ids == [1] and h.clock.slept == [42.0]


@pytest.mark.parametrize(
    ("scripted", "outcome"),
    [
        (Scripted(503, b'{"response":{"status":503}}'), "5xx"),
        (Scripted(200, b'{"response":{"status":200},"messages":[{"id": 3, "bo'), "error"),
        (Scripted(delay_s=0.6), "error"),
    ],
    ids=["503", "truncated-json", "timeout"],
)
def test_transient_failures_back_off_and_retry(
    fake: FakeStockTwits, tmp_path: Path, scripted: Scripted, outcome: str
) -> None:
    fake.add_messages("SPY", messages("SPY", range(1, 4)))
    fake.script(scripted, scripted)
    h = Harness(fake, tmp_path / "state.json", ["SPY"], timeout_s=0.25)
    h.poller.run_once()
    assert h.sink.ids == [1, 2, 3]  # nothing from the bad answers, everything after them
    assert h.requests(outcome) == 2 and h.requests("2xx") == 1
    assert h.clock.slept == [1.0, 2.0]


def test_transient_failures_give_up_after_max_attempts_keeping_state(
    fake: FakeStockTwits, tmp_path: Path
) -> None:
    fake.add_messages("SPY", messages("SPY", range(1, 4)))
    fake.script(*[Scripted(503, b"{}")] * 3)
    h = Harness(fake, tmp_path / "state.json", ["SPY"], max_attempts=3)
    [result] = h.poller.run_once()
    assert not result.complete and h.sink.ids == []
    assert result.failed_outcome is RequestOutcome.SERVER_ERROR
    assert h.requests("5xx") == 3
    assert h.store.load().symbols["SPY"].high_water_id is None


def test_html_403_opens_the_circuit_and_half_opens_after_cooldown(
    fake: FakeStockTwits, tmp_path: Path
) -> None:
    fake.add_messages("SPY", messages("SPY", range(1, 4)))
    fake.add_messages("AAPL", messages("AAPL", range(10, 12)))
    fake.script(Scripted(403, BLOCK_PAGE, content_type="text/html"))
    h = Harness(
        fake, tmp_path / "state.json", ["SPY", "AAPL"], wait_for_circuit=False, cooldown_s=600
    )
    h.poller.run_once()
    assert h.sink.ids == []  # the block page is never data
    assert len(fake.requests) == 1  # and no request was made while the circuit is open
    assert h.requests("blocked") == 1
    assert h.value("stocksent_producer_circuit_open") == 1
    # A poller that waits: sleeps out the cool-down, then one trial request closes it.
    h.poller.wait_for_circuit = True
    h.poller.run_once()
    assert h.clock.slept and h.clock.slept[0] == pytest.approx(600)
    assert sorted(h.sink.ids) == [1, 2, 3, 10, 11]
    assert h.value("stocksent_producer_circuit_open") == 0


def test_empty_page_publishes_nothing_and_keeps_the_high_water_id(
    fake: FakeStockTwits, tmp_path: Path
) -> None:
    fake.add_messages("SPY", messages("SPY", [5, 6]))
    h = Harness(fake, tmp_path / "state.json", ["SPY"])
    h.poller.run_once()
    [result] = h.poller.run_once()
    assert result.complete and result.pages == 1 and result.fetched == 0
    assert h.sink.ids == [5, 6]
    assert h.store.load().symbols["SPY"].high_water_id == 6
    assert h.requests("2xx") == 2


def test_unknown_symbol_is_reported_and_skipped(
    fake: FakeStockTwits, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fake.add_messages("SPY", messages("SPY", [1]))
    h = Harness(fake, tmp_path / "state.json", ["NOPE", "SPY"])
    [missing, found] = h.poller.run_once()
    assert missing.not_found and found.complete
    assert "NOPE not found" in caplog.text
    h.poller.run_once()
    assert [r.symbol for r in fake.requests] == ["NOPE", "SPY", "SPY"]
    assert h.requests("4xx") == 1
    assert h.poller.active_symbols() == ["SPY"]


def test_failed_publish_does_not_advance_the_state(fake: FakeStockTwits, tmp_path: Path) -> None:
    fake.add_messages("SPY", messages("SPY", [1, 2]))
    h = Harness(fake, tmp_path / "state.json", ["SPY"])
    h.sink.fail_flush = True
    with pytest.raises(PublishError):
        h.poller.run_once()
    assert not (tmp_path / "state.json").exists()
    h.sink.fail_flush = False
    h.poller.run_once()  # the same messages are fetched and published again
    assert h.sink.ids == [1, 2]


def test_budget_metric_and_watchlist_lag(fake: FakeStockTwits, tmp_path: Path) -> None:
    fake.add_messages("SPY", messages("SPY", [1]))
    h = Harness(fake, tmp_path / "state.json", ["SPY"], requests_per_hour=50)
    h.poller.run_once()
    assert h.value("stocksent_producer_request_budget_remaining") == 49
    lag = h.value("stocksent_producer_high_water_lag_seconds", symbol="SPY")
    assert lag > 0  # created_at of the fake message is in 2023
    assert h.registry.get_sample_value("stocksent_producer_request_seconds_count") == 1


def test_the_poller_never_exceeds_the_budget_over_simulated_hours(
    fake: FakeStockTwits, tmp_path: Path
) -> None:
    for symbol in ("SPY", "AAPL", "TSLA"):
        fake.add_messages(symbol, messages(symbol, [1]))
    h = Harness(fake, tmp_path / "state.json", ["SPY", "AAPL", "TSLA"], requests_per_hour=40)
    sent_at: list[float] = []
    real_fetch = h.poller.client.fetch_symbol

    def timed_fetch(symbol: str, **kwargs: Any) -> Any:
        sent_at.append(h.clock.now)
        # Three simulated hours are enough; the count bound ends a broken budget quickly.
        if h.clock.now >= 3 * 3600 or len(sent_at) > 3 * 40 + 10:
            h.poller.stop.set()
        return real_fetch(symbol, **kwargs)

    h.poller.client.fetch_symbol = timed_fetch  # type: ignore[method-assign]
    h.poller.run_forever()
    assert len([t for t in sent_at if t < 3600]) == 40  # the whole budget is used...
    for start in sent_at:  # ...and no sliding hour ever holds more
        assert len([t for t in sent_at if start <= t < start + 3600]) <= 40
    assert h.requests("2xx") == len(sent_at)


def test_dedupe_window_is_bounded() -> None:
    window = DedupeWindow(capacity=3, initial=[1, 2])
    for ident in (3, 4, 5):
        window.add(ident)
    assert len(window) == 3 and 1 not in window and 5 in window
    assert window.newest(2) == [4, 5]
