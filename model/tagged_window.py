"""The learner's window: the most recent messages their authors tagged bullish or bearish.

Bounded (the newest `limit` by time are kept), de-duplicated by message id and by
normalised text: a message seen twice (a redelivery, a restart re-reading records) counts
once, and so does the same text posted again (`$SPY 🚀` by a hundred accounts); the newest
copy of a text is the one kept. Texts are compared by a hash of their normalised form,
computed by the serving graph's normalisation (`model.text.normalize_batch`), the one
definition of it, so the window, training and serving agree on what "the same text" is.

The window saves itself as gzip JSON lines, written to a temporary file and renamed, so a
crash mid-write leaves the previous file whole. No Kafka here: the learner service feeds it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gzip
import hashlib
import heapq
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from model.data import LABELS  # index = label value

DEFAULT_LIMIT = 200_000


@dataclass(frozen=True)
class TaggedMessage:
    """One message with its author's tag (1 = bullish, 0 = bearish).

    `at` orders the window (seconds since the epoch: `created_at` when the message has one,
    else when it was recorded); `text_key` identifies its normalised text.
    """

    id: int
    at: float
    body: str
    label: int
    text_key: str
    created_at: str | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form (one line of the saved window)."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TaggedMessage:
        """Inverse of `to_json`."""
        return cls(
            id=int(data["id"]),
            at=float(data["at"]),
            body=str(data["body"]),
            label=int(data["label"]),
            text_key=str(data["text_key"]),
            created_at=data.get("created_at"),
        )


def label_value(tag: object) -> int | None:
    """1 for "bullish", 0 for "bearish" (any case), None for anything else (untagged)."""
    if not isinstance(tag, str):
        return None
    lowered = tag.strip().lower()
    return LABELS.index(lowered) if lowered in LABELS else None


def epoch_seconds(created_at: str | None) -> float | None:
    """ISO-8601 `created_at` (the API's `2026-12-04T15:00:00Z`) as epoch seconds, or None."""
    if not created_at:
        return None
    try:
        parsed = dt.datetime.fromisoformat(created_at.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.timestamp()


def text_keys(bodies: Sequence[str]) -> list[str]:
    """A short hash of each body's normalised text (the serving graph's normalisation)."""
    if not bodies:
        return []
    import tensorflow as tf

    from model.text import normalize_batch, to_utf8

    normalised = normalize_batch(tf.constant([to_utf8(b) for b in bodies], dtype=tf.string))
    return [hashlib.sha256(bytes(n)).hexdigest()[:20] for n in normalised.numpy()]


def tag_messages(
    rows: Sequence[tuple[int, str, str | None, int, float | None]],
    keys: Callable[[Sequence[str]], list[str]] = text_keys,
) -> list[TaggedMessage]:
    """TaggedMessages from (id, body, created_at, label, fallback time) rows, normalising
    all bodies in one batch; the fallback time (e.g. the record's timestamp) orders a message
    without a parseable `created_at`."""
    hashes = keys([body for _, body, _, _, _ in rows])
    out = []
    for (message_id, body, created_at, label, fallback), key in zip(rows, hashes, strict=True):
        at = epoch_seconds(created_at)
        if at is None:
            at = fallback if fallback is not None else 0.0
        out.append(TaggedMessage(message_id, at, body, label, key, created_at))
    return out


class TaggedWindow:
    """The newest `limit` tagged messages, one per id and one per normalised text."""

    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        if limit < 1:
            raise ValueError(f"window limit must be >= 1, got {limit}")
        self.limit = limit
        self._by_id: dict[int, TaggedMessage] = {}
        self._by_text: dict[str, int] = {}
        # (at, id) of every message ever kept; entries whose message left are skipped lazily.
        self._order: list[tuple[float, int]] = []

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, message_id: object) -> bool:
        return message_id in self._by_id

    def __iter__(self) -> Iterator[TaggedMessage]:
        return iter(self.messages())

    def messages(self) -> list[TaggedMessage]:
        """The window, oldest first (by time, then id)."""
        return sorted(self._by_id.values(), key=lambda m: (m.at, m.id))

    def add(self, message: TaggedMessage) -> bool:
        """Keep `message` if it is new to the window; True when it brought a text the window
        did not hold. False when its id is already kept, the same text is kept from a newer
        message, it is older than everything of a full window, or it is a newer copy of a
        kept text (it replaces the older copy: kept, but nothing new to learn from)."""
        if message.id in self._by_id:
            return False
        holder = self._by_text.get(message.text_key)
        if holder is not None:
            kept = self._by_id[holder]
            if (kept.at, kept.id) >= (message.at, message.id):
                return False
            self._remove(holder)  # the newer copy of the text replaces the older
        if len(self._by_id) >= self.limit and self._order:
            oldest = self._oldest()
            if oldest is not None and (message.at, message.id) < oldest:
                return False
        self._by_id[message.id] = message
        self._by_text[message.text_key] = message.id
        heapq.heappush(self._order, (message.at, message.id))
        while len(self._by_id) > self.limit:
            self._evict_oldest()
        if len(self._order) > 2 * self.limit + 1024:  # drop stale heap entries now and then
            self._order = [(m.at, m.id) for m in self._by_id.values()]
            heapq.heapify(self._order)
        return holder is None

    def add_many(self, messages: Iterable[TaggedMessage]) -> int:
        """Keep each message in turn; returns how many brought a new text."""
        return sum(self.add(m) for m in messages)

    def _oldest(self) -> tuple[float, int] | None:
        while self._order:
            at, message_id = self._order[0]
            kept = self._by_id.get(message_id)
            if kept is not None and kept.at == at:
                return at, message_id
            heapq.heappop(self._order)
        return None

    def _evict_oldest(self) -> None:
        oldest = self._oldest()
        if oldest is not None:
            heapq.heappop(self._order)
            self._remove(oldest[1])

    def _remove(self, message_id: int) -> None:
        message = self._by_id.pop(message_id)
        if self._by_text.get(message.text_key) == message_id:
            del self._by_text[message.text_key]

    # ---- persistence -------------------------------------------------------------------

    def save(self, path: str | Path, state: dict[str, Any] | None = None) -> Path:
        """Write the window (and a small `state` dict, e.g. the learner's counters) to `path`
        atomically: a temporary file in the same folder, fsynced, then renamed."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as raw:
                # mtime 0: the same window gives the same bytes
                with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=5, mtime=0) as handle:
                    header = {"format": 1, "limit": self.limit, "state": state or {}}
                    handle.write(json.dumps({"window": header}).encode() + b"\n")
                    for message in self.messages():
                        handle.write(json.dumps(message.to_json(), ensure_ascii=False).encode())
                        handle.write(b"\n")
                raw.flush()
                os.fsync(raw.fileno())
            os.replace(temporary, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise
        return path

    @classmethod
    def load(
        cls, path: str | Path, limit: int | None = None
    ) -> tuple[TaggedWindow, dict[str, Any]]:
        """A window saved by `save` (bounded by `limit`, else the saved one) and its state.
        Raises ValueError naming the file when it is not a saved window."""
        path = Path(path)
        try:
            with gzip.open(path, "rt", encoding="utf-8") as handle:
                first = json.loads(handle.readline() or "null")
                if not isinstance(first, dict) or "window" not in first:
                    raise ValueError("no window header")
                header = first["window"]
                window = cls(limit or int(header.get("limit", DEFAULT_LIMIT)))
                window.add_many(TaggedMessage.from_json(json.loads(line)) for line in handle)
        except (OSError, EOFError, ValueError, KeyError, TypeError) as err:
            raise ValueError(f"{path}: not a saved learner window ({err})") from err
        return window, dict(header.get("state") or {})


def read_messages(path: str | Path) -> list[TaggedMessage]:
    """The messages of a saved window file, oldest first."""
    window, _ = TaggedWindow.load(path)
    return window.messages()
