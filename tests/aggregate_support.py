"""Helpers for the aggregator tests: a labeled input stream with known event times per
input partition, its ground truth computed independently of stream/aggregate (a plain dict
per (symbol, window seconds, window start)), and `stocksent aggregate` as a child process."""

from __future__ import annotations

import random
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from kafka import KafkaProducer

from stocksent.service_process import ServiceProcess

P = "stocksent_aggregator_"
SYMBOLS = ("AAPL", "TSLA", "SPY", "NVDA", "BTC.X", "GME")
FLUSH_SYMBOL = "ZZFLUSH"  # the last record of each partition: far ahead, closes the rest
BASE_S = 1_780_000_000  # 2026-05-28T20:26:40Z


@dataclass
class Labeled:
    """One labeled record as the test writes it, with its partition."""

    partition: int
    event_ms: int
    symbols: list[str]
    label: str
    probability: float
    author: str | None
    version: str

    def value(self, message_id: int) -> bytes:
        seconds, ms = divmod(self.event_ms, 1000)
        created = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{ms:03d}Z"
        return orjson.dumps(
            {
                "id": message_id,
                "created_at": created,
                "symbols": self.symbols,
                "body": f"message {message_id}",
                "sentiment": {"label": self.label, "probability": self.probability},
                "model_version": self.version,
                "author_sentiment": self.author,
                "source": {"topic": "stocktwits.messages", "partition": 0, "offset": message_id},
                "classified_at": "2026-12-04T18:00:00.000Z",
            }
        )


def labeled_stream(
    partitions: int, per_partition: int, seed: int = 21, spread_s: float = 600.0
) -> list[Labeled]:
    """Records in the order each partition gets them: event times rise through `spread_s`,
    about 1 in 8 steps back within a few seconds (within grace), 1 in 40 far back (beyond
    it), some mention several symbols (sometimes twice, and with `$`), some none."""
    rng = random.Random(seed)
    stream: list[Labeled] = []
    for p in range(partitions):
        for i in range(per_partition):
            event = BASE_S + spread_s * i / per_partition + rng.random()
            roll = rng.random()
            if roll < 0.025:
                event -= rng.uniform(60, 200)  # far behind: late for the short view at least
            elif roll < 0.15:
                event -= rng.uniform(0, 4)
            symbols = rng.sample(SYMBOLS, rng.choice((1, 1, 1, 2, 3)))
            if rng.random() < 0.05:
                symbols = [*symbols, "$" + symbols[0].lower()]  # the same symbol again
            if rng.random() < 0.02:
                symbols = []
            probability = rng.random()
            stream.append(
                Labeled(
                    p,
                    int(event * 1000),
                    symbols,
                    "bullish" if probability >= 0.5 else "bearish",
                    probability,
                    rng.choice((None, "bullish", "bearish")),
                    rng.choice(("m-1", "m-2")),
                )
            )
    for p in range(partitions):
        stream.append(
            Labeled(
                p,
                (BASE_S + int(spread_s) + 86_400) * 1000,
                [FLUSH_SYMBOL],
                "bullish",
                0.9,
                None,
                "m-1",
            )
        )
    return stream


@dataclass
class Truth:
    """Final windows expected and records expected late, per view size (seconds)."""

    windows: dict[tuple[str, int, int], dict[str, Any]] = field(default_factory=dict)
    late: Counter[int] = field(default_factory=Counter)
    dead_late: int = 0  # late for every view


def ground_truth(stream: Sequence[Labeled], sizes_s: Sequence[int], grace_s: float) -> Truth:
    """What the aggregator must emit, computed plainly from the produced order."""
    truth = Truth()
    sums: dict[tuple[str, int, int], dict[str, Any]] = {}
    watermark: dict[int, float] = defaultdict(lambda: float("-inf"))
    for record in stream:
        event_ms = record.event_ms
        unique = list(dict.fromkeys(s.lstrip("$").upper() for s in record.symbols))
        late_for_all = bool(unique)
        for size in sizes_s:
            start = event_ms // (size * 1000) * size * 1000
            if unique and start + size * 1000 + grace_s * 1000 <= watermark[record.partition]:
                truth.late[size] += 1
                continue
            late_for_all = False
            for symbol in unique:
                figures = sums.setdefault((symbol, size, start), _empty())
                _add(figures, record)
        truth.dead_late += late_for_all
        watermark[record.partition] = max(watermark[record.partition], event_ms)
    low = min(watermark.values())
    for (symbol, size, start), figures in sums.items():
        if start + size * 1000 + grace_s * 1000 <= low:
            truth.windows[(symbol, size, start)] = figures
    return truth


def _empty() -> dict[str, Any]:
    return {"count": 0, "bullish": 0, "probability": 0.0, "author_tagged": 0,
            "author_agree": 0, "model_versions": Counter()}  # fmt: skip


def _add(figures: dict[str, Any], record: Labeled) -> None:
    figures["count"] += 1
    figures["bullish"] += record.label == "bullish"
    figures["probability"] += record.probability
    figures["author_tagged"] += record.author is not None
    figures["author_agree"] += record.author == record.label
    figures["model_versions"][record.version] += 1


def produce_stream(bootstrap: str, topic: str, stream: Sequence[Labeled], first_id: int) -> None:
    """Writes records to their partitions in order; waits for every acknowledgement."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    for i, record in enumerate(stream):
        producer.send(topic, key=str(first_id + i).encode(), value=record.value(first_id + i),
                      partition=record.partition)  # fmt: skip
    producer.flush()
    producer.close()


def window_key(record: dict[str, Any]) -> tuple[str, int, int]:
    start = datetime.fromisoformat(record["window_start"].replace("Z", "+00:00"))
    return record["symbol"], record["window_seconds"], round(start.timestamp() * 1000)


def mismatches(emitted: dict[tuple[str, int, int], dict[str, Any]], truth: Truth) -> list[str]:
    """What differs between emitted final windows and the truth (empty when exact)."""
    problems = [f"missing {k}" for k in truth.windows.keys() - emitted.keys()]
    problems += [f"unexpected {k}" for k in emitted.keys() - truth.windows.keys()]
    for key in truth.windows.keys() & emitted.keys():
        want, got = truth.windows[key], emitted[key]
        count = want["count"]
        expected = {
            "count": count, "bullish": want["bullish"], "bullish_share": want["bullish"] / count,
            "author_tagged": want["author_tagged"], "author_agree": want["author_agree"],
            "model_versions": dict(want["model_versions"]), "final": True,
        }  # fmt: skip
        actual = {k: got[k] for k in expected}
        if actual != expected or abs(got["mean_probability"] - want["probability"] / count) > 1e-9:
            problems.append(f"{key}: expected {expected}, got {actual}")
    return problems


class AggregatorProcess(ServiceProcess):
    """`stocksent aggregate` as an operator runs it."""

    def __init__(self, bootstrap: str, args: Sequence[str], log_path: Path) -> None:
        super().__init__("aggregate", ["--bootstrap-servers", bootstrap, *args], log_path)
