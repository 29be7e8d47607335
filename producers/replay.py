"""Replay of saved messages: an API response JSON, a JSONL of message objects, or a CSV.

- `.json`: a saved API response (`{"messages": [...], ...}`) or a JSON array of messages;
  each message is published exactly as saved.
- `.jsonl` / `.ndjson`: one message object a line, published as saved.
- `.csv` / `.csv.gz`: rows with a `message` column (optionally `sentiment`, `created_at`),
  such as the SPY 2017 data set. Each row becomes a StockTwits-shaped object (see
  `wrap_text`): a stable id derived from the text, the body HTML-escaped as the API sends it,
  `$TICKER` symbols, the row's sentiment as the author's tag, `created_at` given or now.

Files are read lazily (a generator), so a large CSV replays in constant memory.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import html
import io
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson

from producers.messages import iso_utc

CASHTAG = re.compile(r"\$([A-Za-z][A-Za-z0-9.]{0,9})\b")
SENTIMENTS = {"bullish": "Bullish", "bearish": "Bearish"}


class ReplayError(ValueError):
    """A replay file cannot be read; the message names the file and the place."""


def replay_format(path: Path) -> str:
    """`json`, `jsonl` or `csv`, from the file name."""
    name = path.name.lower().removesuffix(".gz")
    for suffix, kind in ((".jsonl", "jsonl"), (".ndjson", "jsonl"), (".json", "json")):
        if name.endswith(suffix):
            return kind
    if name.endswith((".csv", ".tsv")):
        return "csv"
    raise ReplayError(f"{path}: unknown replay format (expected .json, .jsonl or .csv[.gz])")


def read_messages(
    path: Path | str, *, clock: Callable[[], float] = time.time
) -> Iterator[dict[str, Any]]:
    """The message objects of a replay file, in file order."""
    path = Path(path)
    kind = replay_format(path)
    if kind == "json":
        yield from _read_json(path)
    elif kind == "jsonl":
        yield from _read_jsonl(path)
    else:
        yield from _read_csv(path, clock)


def stable_id(text: str) -> int:
    """A positive 63-bit id derived from the text: the same text always gets the same id."""
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def wrap_text(
    text: str, *, sentiment: str | None = None, created_at: str | None = None, now: float
) -> dict[str, Any]:
    """A StockTwits-shaped message object for a bare text (CSV replay)."""
    label = SENTIMENTS.get((sentiment or "").strip().lower())
    symbols = list(dict.fromkeys(m.upper() for m in CASHTAG.findall(text)))
    return {
        "id": stable_id(text),
        # The API sends bodies HTML-escaped; the classifier unescapes, so do as the API does.
        "body": html.escape(text, quote=False),
        "created_at": created_at or iso_utc(now),
        "user": None,
        "source": {"id": 0, "title": "stocksent replay", "url": None},
        "symbols": [{"symbol": s} for s in symbols],
        "entities": {"sentiment": {"basic": label} if label else None},
    }


def _open_text(path: Path) -> io.TextIOBase:
    if path.name.lower().endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def _read_json(path: Path) -> Iterator[dict[str, Any]]:
    try:
        with _open_text(path) as handle:
            data = orjson.loads(handle.read())
    except (OSError, orjson.JSONDecodeError) as err:
        raise ReplayError(f"{path}: not readable JSON: {err}") from None
    messages = data.get("messages") if isinstance(data, dict) else data
    if not isinstance(messages, list):
        raise ReplayError(f"{path}: expected an API response with `messages` or a JSON array")
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise ReplayError(f"{path}: messages[{index}] is not an object")
        yield message


def _read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with _open_text(path) as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                message = orjson.loads(line)
            except orjson.JSONDecodeError as err:
                raise ReplayError(f"{path}:{number}: not valid JSON: {err}") from None
            if not isinstance(message, dict):
                raise ReplayError(f"{path}:{number}: not a JSON object")
            yield message


def _read_csv(path: Path, clock: Callable[[], float]) -> Iterator[dict[str, Any]]:
    with _open_text(path) as handle:
        reader = csv.DictReader(handle, delimiter="\t" if ".tsv" in path.name else ",")
        if reader.fieldnames is None or "message" not in reader.fieldnames:
            raise ReplayError(f"{path}: CSV has no `message` column (got {reader.fieldnames})")
        for row in reader:
            text = row.get("message") or ""
            if not text.strip():
                continue
            yield wrap_text(
                text,
                sentiment=row.get("sentiment"),
                created_at=row.get("created_at") or None,
                now=clock(),
            )
