"""What `stocksent run` shows while the pipeline flows: output that survives a reader that
left (`| head`, a closed terminal), the status line built from the services' own /metrics,
and the row limit that keeps the view readable at any message rate."""

from __future__ import annotations

import contextlib
import errno
import os
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO


class Screen:
    """Where `run` writes: stdout and stderr, each given up on the first time it fails
    (`| head` closed the pipe, the terminal is gone) instead of raising in the middle of a
    clean-up. `closed` says that the reader left, which stops the run."""

    def __init__(self, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> None:
        self.out: TextIO | None = out
        self.err: TextIO | None = err
        self.closed = False
        self.colour = out.isatty() and not os.environ.get("NO_COLOR")

    def say(self, line: str) -> None:
        """A line on stdout."""
        self.out = self._write(self.out, line)
        if self.out is None:
            self.closed = True

    def warn(self, line: str) -> None:
        """A line on stderr."""
        self.err = self._write(self.err, line)

    @staticmethod
    def _write(stream: TextIO | None, line: str) -> TextIO | None:
        if stream is None:
            return None
        try:
            print(line, file=stream, flush=True)
            return stream
        except OSError as err:  # EPIPE: the reader left; EIO: the terminal closed
            if err.errno not in (errno.EPIPE, errno.EIO, errno.EBADF, None):
                raise
            with contextlib.suppress(OSError):  # Python would flush it again at exit
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, stream.fileno())
            return None


def scrape(port_number: int) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """A /metrics page as {sample name: {labels: value}}; empty when it does not answer."""
    from prometheus_client.parser import text_string_to_metric_families

    if not port_number:
        return {}
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port_number}/metrics", timeout=1) as r:
            page = r.read().decode()
    except OSError:
        return {}
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(page):
        for sample in family.samples:
            key = tuple(sorted(sample.labels.items()))
            samples.setdefault(sample.name, {})[key] = sample.value
    return samples


def _total(samples: Mapping[str, Mapping[Any, float]], name: str) -> float:
    return sum(samples.get(name, {}).values())


@dataclass
class Status:
    """Running totals for the status line, from the services' own /metrics."""

    classifier_port: int
    producer_port: int
    aggregator_port: int = 0
    published: float = 0.0  # by the producer, acknowledged
    labeled: float = 0.0
    consumed: float = 0.0
    dead_letters: Counter[str] = field(default_factory=Counter)
    lag: float = 0.0
    model_version: str = "?"
    api_problems: Counter[str] = field(default_factory=Counter)
    api_detail: str = ""  # the producer's last warning, e.g. "connection error (gaierror)"
    _last: tuple[float, float] = field(default_factory=lambda: (time.monotonic(), 0.0))
    per_second: float = 0.0  # labeled a second since the last refresh
    windows: float = 0.0  # final per-symbol windows the aggregator published

    def refresh(self) -> None:
        """Reads both /metrics pages (a service that does not answer keeps its last values)."""
        classifier = scrape(self.classifier_port)
        if classifier:
            self.labeled = _total(classifier, "stocksent_classifier_records_published_total")
            self.consumed = _total(classifier, "stocksent_classifier_messages_consumed_total")
            self.lag = _total(classifier, "stocksent_classifier_consumer_lag")
            self.dead_letters = Counter(
                {
                    dict(labels).get("reason", "?"): int(value)
                    for labels, value in classifier.get(
                        "stocksent_classifier_dead_letters_total", {}
                    ).items()
                    if value
                }
            )
            for labels, value in classifier.get("stocksent_classifier_model_info", {}).items():
                if value:
                    self.model_version = dict(labels).get("version", "?")
        producer = scrape(self.producer_port)
        if producer:
            self.published = max(
                self.published, _total(producer, "stocksent_producer_messages_published_total")
            )
            self.api_problems = Counter(
                {
                    dict(labels).get("outcome", "?"): int(value)
                    for labels, value in producer.get(
                        "stocksent_producer_requests_total", {}
                    ).items()
                    if value and dict(labels).get("outcome") != "2xx"
                }
            )
        aggregator = scrape(self.aggregator_port)
        if aggregator:
            self.windows = sum(
                value
                for labels, value in aggregator.get(
                    "stocksent_aggregator_windows_emitted_total", {}
                ).items()
                if dict(labels).get("final") == "true"
            )
        now = time.monotonic()
        if now > self._last[0]:
            self.per_second = (self.labeled - self._last[1]) / (now - self._last[0])
        self._last = (now, self.labeled)

    def line(self, hidden: int) -> str:
        """One status line: totals, rate, dead letters by reason, lag, model version."""
        dlq = sum(self.dead_letters.values())
        reasons = ", ".join(f"{r} {n}" for r, n in self.dead_letters.most_common())
        parts = [
            f"published {int(self.published):,}",
            f"labeled {int(self.labeled):,} ({self.per_second:.1f}/s)",
            f"DLQ {dlq:,}" + (f" ({reasons})" if reasons else ""),
            f"lag {int(self.lag):,}",
            f"model {self.model_version}",
        ]
        if self.aggregator_port:
            parts.append(f"windows {int(self.windows):,}")
        if self.api_problems:
            problems = ", ".join(f"{o} {n}" for o, n in self.api_problems.most_common())
            detail = f"last: {self.api_detail}; " if self.api_detail else ""
            parts.append(f"API requests failed: {problems} ({detail}see producer.log)")
        if hidden:
            parts.append(f"{hidden:,} rows not shown (--rows-per-second)")
        return "── " + time.strftime("%H:%M:%S") + "  " + " · ".join(parts)

    def totals(self) -> tuple[float, ...]:
        """What the status line counts; an unchanged one is not printed again."""
        return (
            self.published,
            self.labeled,
            sum(self.dead_letters.values()),
            self.lag,
            self.windows,
        )


class RowLimiter:
    """At most `rate` rows a second (a token bucket of one second), so the view stays
    readable at any message rate; the rest are counted, and the status line says how many."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.tokens = rate
        self.at = time.monotonic()
        self.hidden = 0

    def allow(self) -> bool:
        """True when this row may be printed."""
        now = time.monotonic()
        self.tokens = min(self.rate, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        self.hidden += 1
        return False
