"""The live source: polls each watchlist symbol's stream into the sink, without gaps or dupes.

Per symbol (see `producers.state` for what is persisted):
- first poll, no history: up to `backfill_pages` pages, newest first (older history is not
  chased: the producer feeds a live classifier, not an archive);
- later polls: `since=<high_water_id>`. The API returns the newest 30 messages newer than
  that; a full page means older-but-new ones may be waiting, so it pages back with
  `max=<oldest id seen - 1>` until a page is not full, i.e. the high-water id is reached;
- if paging stops early (budget, errors, block, stop), the unfinished range is saved and
  finished first on the next poll, so nothing between the old high-water id and the newest
  message is ever skipped.

Messages of one poll are published oldest first, then flushed; only after the broker has
acknowledged them does the state advance. A message seen under several symbols is
published once: ids already published are remembered in a bounded window (and the newest
of them persisted with the state, so a restart does not re-publish them either).

Every request passes the shared `RequestBudget` and the `CircuitBreaker`; failures are
handled by their `RequestOutcome` (see `producers.stocktwits_api`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from common.symbols import normalise_symbol
from producers.backoff import Backoff, CircuitBreaker, CircuitState
from producers.budget import RequestBudget
from producers.messages import created_at_epoch, iso_utc_ms, message_id
from producers.metrics import ProducerMetrics, Source
from producers.publisher import MessageSink
from producers.state import FileStateStore, ProducerState
from producers.stocktwits_api import PAGE_SIZE, ApiResponse, RequestOutcome, StockTwitsClient

log = logging.getLogger(__name__)

PERSISTED_RECENT_IDS = 5000
"""Published ids saved with the state for cross-symbol dedupe after a restart."""


class DedupeWindow:
    """The last `capacity` published ids: memory stays bounded however long the run."""

    def __init__(self, capacity: int = 100_000, initial: Iterable[int] = ()) -> None:
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self.capacity = capacity
        self._ids: OrderedDict[int, None] = OrderedDict()
        for ident in initial:
            self.add(ident)

    def __contains__(self, ident: object) -> bool:
        return ident in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, ident: int) -> None:
        """Remembers `ident`, forgetting the oldest id when full."""
        self._ids[ident] = None
        self._ids.move_to_end(ident)
        while len(self._ids) > self.capacity:
            self._ids.popitem(last=False)

    def newest(self, count: int) -> list[int]:
        """The `count` most recently added ids, oldest first."""
        ids = list(self._ids)
        return ids[-count:] if count else []


@dataclass
class PollResult:
    """What one poll of one symbol did."""

    symbol: str
    complete: bool = False
    pages: int = 0
    fetched: int = 0
    published: int = 0
    duplicates: int = 0
    not_found: bool = False
    failed_outcome: RequestOutcome | None = None


@dataclass
class _Paging:
    lower: int | None  # exclusive: everything <= it is already published
    upper: int | None  # inclusive `max=` of the next request
    top: int | None  # newest id fetched in this range
    collected: dict[int, dict[str, Any]] = field(default_factory=dict)


class LivePoller:
    """Polls the watchlist through the budget into a sink, persisting high-water ids."""

    def __init__(
        self,
        client: StockTwitsClient,
        sink: MessageSink,
        store: FileStateStore,
        metrics: ProducerMetrics,
        symbols: Sequence[str],
        *,
        budget: RequestBudget,
        backoff: Backoff | None = None,
        breaker: CircuitBreaker | None = None,
        backfill_pages: int = 1,
        max_attempts: int = 5,
        wait_for_circuit: bool = True,
        stop: threading.Event | None = None,
        sleep: Callable[[float], Any] | None = None,
        wall_clock: Callable[[], float] = time.time,
        dedupe_capacity: int = 100_000,
    ) -> None:
        self.client = client
        self.sink = sink
        self.store = store
        self.metrics = metrics
        self.symbols = [normalise_symbol(s) for s in symbols]
        self.budget = budget
        self.backoff = backoff or Backoff()
        self.breaker = breaker or CircuitBreaker()
        self.backfill_pages = backfill_pages
        self.max_attempts = max_attempts
        self.wait_for_circuit = wait_for_circuit
        self.stop = stop or threading.Event()
        # Default sleep wakes up at once on stop, so SIGTERM never waits out a long backoff.
        self._sleep = sleep or self.stop.wait
        self._wall_clock = wall_clock
        self.state: ProducerState = store.load()
        self.dedupe = DedupeWindow(dedupe_capacity, self.state.recent_ids)
        self.skipped: set[str] = set()
        self._newest_created: dict[str, float] = {}
        self._last_outcome: RequestOutcome | None = None
        self.metrics.budget_remaining.set(self.budget.remaining())

    # ---- driving ----------------------------------------------------------------------

    def run_once(self) -> list[PollResult]:
        """Polls every symbol once (paging back as needed)."""
        results = []
        for symbol in self.symbols:
            if self.stop.is_set():
                break
            if symbol in self.skipped:
                continue
            results.append(self.poll_symbol(symbol))
        return results

    def run_forever(self) -> None:
        """Polls the watchlist round after round until `stop` is set or no symbol is left."""
        while not self.stop.is_set():
            if not self.active_symbols():
                log.error("no symbol left to poll (all were not found)")
                return
            self.run_once()

    def active_symbols(self) -> list[str]:
        """Watchlist symbols not skipped as not found."""
        return [s for s in self.symbols if s not in self.skipped]

    # ---- one symbol ---------------------------------------------------------------------

    def poll_symbol(self, symbol: str) -> PollResult:
        """One poll of `symbol`: fetch (paging back), publish, flush, then save the state.

        A range left unfinished by an earlier poll is completed first; then, in the same
        poll, the symbol is polled forward from the new high-water id, so messages that
        arrived meanwhile (e.g. while the producer was down) are not left for later.
        """
        resumed_gap = self.state.symbol(symbol).has_gap
        result = self._poll_range(symbol)
        if resumed_gap and result.complete and not self.stop.is_set():
            forward = self._poll_range(symbol)
            result.complete = forward.complete
            result.pages += forward.pages
            result.fetched += forward.fetched
            result.published += forward.published
            result.duplicates += forward.duplicates
            result.failed_outcome = forward.failed_outcome
        return result

    def _poll_range(self, symbol: str) -> PollResult:
        result = PollResult(symbol)
        st = self.state.symbol(symbol)
        if st.has_gap:
            paging = _Paging(st.high_water_id, st.pending_max_id, st.pending_top_id)
        else:
            paging = _Paging(st.high_water_id, None, None)
        backfill = paging.lower is None and paging.top is None
        while True:
            response = self._request(symbol, since=paging.lower, max_id=paging.upper)
            if response is None or response.outcome is not RequestOutcome.OK:
                result.failed_outcome = self._last_outcome
                if response is not None:
                    result.failed_outcome = response.outcome
                    if response.symbol_not_found:
                        result.not_found = True
                        self.skipped.add(symbol)
                        log.error("symbol %s not found by the API: skipped", symbol)
                break
            result.pages += 1
            page = self._page_messages(response, paging)
            result.fetched += len(response.messages)
            self.metrics.messages_fetched.inc(len(response.messages))
            for ident, message in page:
                paging.collected.setdefault(ident, message)
                paging.top = ident if paging.top is None else max(paging.top, ident)
            # Not full: nothing older is waiting between here and the high-water id.
            if len(response.messages) < PAGE_SIZE or not page:
                result.complete = True
                break
            oldest = min(ident for ident, _ in page)
            paging.upper = oldest - 1
            if backfill and result.pages >= self.backfill_pages:
                result.complete = True  # backfill depth reached: older history not wanted
                break
        if backfill and result.pages > 0:
            result.complete = True  # an interrupted backfill keeps what it got
        self._publish(symbol, paging, result)
        self._advance(symbol, paging, result)
        return result

    def _page_messages(
        self, response: ApiResponse, paging: _Paging
    ) -> list[tuple[int, dict[str, Any]]]:
        """The page's messages inside (lower, upper], with ids (a server may ignore params)."""
        page = []
        for message in response.messages:
            ident = message_id(message)
            if ident is None:
                log.warning("message without an integer id ignored")
                continue
            if paging.lower is not None and ident <= paging.lower:
                continue
            if paging.upper is not None and ident > paging.upper:
                continue
            page.append((ident, message))
        return page

    def _publish(self, symbol: str, paging: _Paging, result: PollResult) -> None:
        fetched_at = iso_utc_ms(self._wall_clock())
        newest_created: float | None = None
        sent: list[int] = []
        for ident in sorted(paging.collected):
            message = paging.collected[ident]
            if ident in self.dedupe:
                result.duplicates += 1
                self.metrics.duplicates_skipped.inc()
                continue
            self.sink.send(message, source=Source.LIVE, symbol=symbol, fetched_at=fetched_at)
            sent.append(ident)
            created = created_at_epoch(message)
            if created is not None:
                newest_created = max(newest_created or created, created)
        if sent:
            # Raises on a failed ack: the state below is then not advanced (no gap).
            self.sink.flush()
            for ident in sent:
                self.dedupe.add(ident)
        result.published = len(sent)
        if newest_created is not None:
            previous = self._newest_created.get(symbol, newest_created)
            self._newest_created[symbol] = max(previous, newest_created)
        if symbol in self._newest_created:
            lag = self._wall_clock() - self._newest_created[symbol]
            self.metrics.set_high_water_lag(symbol, lag)

    def _advance(self, symbol: str, paging: _Paging, result: PollResult) -> None:
        st = self.state.symbol(symbol)
        if result.complete:
            if paging.top is not None:
                st.high_water_id = max(st.high_water_id or paging.top, paging.top)
            st.pending_top_id = st.pending_max_id = None
        elif paging.top is not None and paging.upper is not None:
            # Interrupted while paging back: remember the range still to fetch.
            st.pending_top_id, st.pending_max_id = paging.top, paging.upper
            log.info(
                "%s: paging interrupted, ids (%s, %s] still to fetch",
                symbol,
                st.high_water_id,
                paging.upper,
            )
        self.state.recent_ids = self.dedupe.newest(PERSISTED_RECENT_IDS)
        self.store.save(self.state)

    # ---- one request --------------------------------------------------------------------

    def _request(self, symbol: str, *, since: int | None, max_id: int | None) -> ApiResponse | None:
        """One page, retried on transient failures; None when given up or stopped."""
        self._last_outcome = None
        for _attempt in range(self.max_attempts):
            if not self._wait_until_allowed():
                return None
            self.budget.record()
            response = self.client.fetch_symbol(symbol, since=since, max_id=max_id)
            self.metrics.count_request(response.outcome, response.seconds)
            self.budget.observe(response.rate_limit)
            outcome = self._last_outcome = response.outcome
            if outcome is RequestOutcome.BLOCKED:
                self.breaker.trip()
                log.error(
                    "API answered with a block page (%s): pausing requests for %.0fs",
                    response.detail,
                    self.breaker.wait_s(),
                )
            else:
                self.breaker.succeed()
            self.metrics.circuit_open.set(0 if self.breaker.state is CircuitState.CLOSED else 1)
            self.metrics.budget_remaining.set(self.budget.remaining())
            if outcome is RequestOutcome.RATE_LIMITED:
                waited = self.budget.block_until_reset(
                    response.rate_limit,
                    fallback_s=response.retry_after or self.backoff.next_delay_s(),
                )
                log.warning("%s: rate limited, next request in %.1fs", symbol, waited)
                continue
            if outcome.transient:
                delay = self.backoff.next_delay_s()
                self.budget.delay(delay)
                log.warning("%s: %s, retrying in %.1fs", symbol, response.detail, delay)
                continue
            if outcome is RequestOutcome.OK:
                self.backoff.reset()
            return response
        log.error("%s: giving up this poll after %d attempts", symbol, self.max_attempts)
        return None

    def _wait_until_allowed(self) -> bool:
        """Sleeps until the budget and the breaker allow a request; False if stopped."""
        while not self.stop.is_set():
            circuit_wait = self.breaker.wait_s()
            if circuit_wait > 0 and not self.wait_for_circuit:
                log.error("API is blocking us; not waiting %.0fs for the breaker", circuit_wait)
                return False
            wait = max(self.budget.wait_s(), circuit_wait)
            if wait <= 0:
                return True
            self._sleep(wait)
        return False
