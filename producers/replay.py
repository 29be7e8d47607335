"""Replay of saved messages: an API response JSON, a JSONL of message objects, or a CSV.

- `.json`: a saved API response (`{"messages": [...], ...}`) or a JSON array of messages;
  each message is published exactly as saved.
- `.jsonl` / `.ndjson`: one message object a line, published as saved. A line that is not a
  JSON object is published as it is, without a key, so that the classifier dead-letters it
  (a replay exercises the DLQ as live traffic would); blank lines are skipped.
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

from common.symbols import normalise_symbol
from producers.messages import RawRecord, iso_utc

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
) -> Iterator[dict[str, Any] | RawRecord]:
    """The message objects of a replay file, in file order; a JSONL line that is not a JSON
    object comes as a `RawRecord`, to be published as it is (the classifier dead-letters it)."""
    path = Path(path)
    kind = replay_format(path)
    if kind == "json":
        yield from _read_json(path)
    elif kind == "jsonl":
        yield from _read_jsonl(path)
    else:
        yield from _read_csv(path, clock)


def check_file(path: Path | str) -> str:
    """Checks, before anything starts, that `path` is a replay file this module reads: a
    known format, readable, a CSV with a `message` column, a JSON file that holds messages,
    a JSONL file whose first line is a message. Returns its format; raises ReplayError."""
    path = Path(path)
    kind = replay_format(path)
    try:
        if kind == "json":
            next(_read_json(path), None)
        elif kind == "csv":
            next(_read_csv(path, time.time), None)
        else:
            first = next(_read_jsonl(path), None)
            if first is None:
                raise ReplayError(f"{path}: no message in it")
            if isinstance(first, RawRecord):
                raise ReplayError(f"{first.where}: the first line is not a JSON object")
    except (OSError, UnicodeDecodeError, EOFError, gzip.BadGzipFile) as err:
        raise ReplayError(f"{path}: cannot be read: {err}") from None
    return kind


def stable_id(text: str) -> int:
    """A positive 63-bit id derived from the text: the same text always gets the same id."""
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def wrap_text(
    text: str, *, sentiment: str | None = None, created_at: str | None = None, now: float
) -> dict[str, Any]:
    """A StockTwits-shaped message object for a bare text (CSV replay)."""
    label = SENTIMENTS.get((sentiment or "").strip().lower())
    symbols = list(dict.fromkeys(normalise_symbol(m) for m in CASHTAG.findall(text)))
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


def _open_binary(path: Path) -> io.BufferedIOBase:
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rb")
    return open(path, "rb")


def _open_text(path: Path) -> io.TextIOBase:
    if path.name.lower().endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def _read_json(path: Path) -> Iterator[dict[str, Any] | RawRecord]:
    try:
        with _open_text(path) as handle:
            data = orjson.loads(handle.read())
    except (OSError, orjson.JSONDecodeError) as err:
        raise ReplayError(f"{path}: not readable JSON: {err}") from None
    messages = data.get("messages") if isinstance(data, dict) else data
    if not isinstance(messages, list):
        raise ReplayError(f"{path}: expected an API response with `messages` or a JSON array")
    for index, message in enumerate(messages):
        if isinstance(message, dict):
            yield message
        else:  # the classifier dead-letters it as not_an_object
            yield RawRecord(orjson.dumps(message), f"{path}: messages[{index}]")


def _read_jsonl(path: Path) -> Iterator[dict[str, Any] | RawRecord]:
    with _open_binary(path) as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                message = orjson.loads(line)
            except orjson.JSONDecodeError:
                message = None
            if isinstance(message, dict):
                yield message
            else:  # the classifier dead-letters it with the reason; the replay goes on
                yield RawRecord(line.rstrip(b"\r\n"), f"{path}:{number}")


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
