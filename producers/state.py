"""Per-symbol high-water ids of the live poller, persisted in a JSON file written atomically.

Choice: a local JSON file (`--state`, default `producer-state.json` in the state directory,
`$STOCKSENT_STATE_DIR`, else `$XDG_STATE_HOME/stocksent`, else `~/.local/state/stocksent`), not the
compacted topic. Reason: it is read and written without a broker round trip, is trivially
inspectable (`cat`), and its atomic replace (write temp file, fsync, `os.replace`) never
leaves a half-written state. In containers, mount a volume at the state path.

Order of operations, which gives the guarantees:
1. a poll cycle's messages are published and the producer is flushed (every record acked);
2. only then is the state advanced and saved.
So a crash (`kill -9`) at any point loses nothing (the state never runs ahead of the topic);
a crash between 1 and 2 may re-publish that cycle once, nothing else. A graceful stop
(SIGINT/SIGTERM, `--once`) duplicates nothing.

Per symbol, `high_water_id` means "every message of this symbol with id <= it is in the
topic". When paging back was interrupted (budget, error, stop), the unfinished range is kept
as `pending_top_id` (newest id already published) and `pending_max_id` (the next `max=` to
ask for): the next poll finishes that range first, and only then does `high_water_id` jump to
`pending_top_id`. The ids most recently published (bounded) are saved too, so cross-symbol
dedupe survives a restart.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FORMAT_VERSION = 1
STATE_FILE_NAME = "producer-state.json"


def state_dir() -> Path:
    """Where the producer keeps its state: $STOCKSENT_STATE_DIR, else $XDG_STATE_HOME/stocksent,
    else ~/.local/state/stocksent (never the working directory, which may be a checkout)."""
    configured = os.environ.get("STOCKSENT_STATE_DIR")
    if configured:
        return Path(configured).expanduser()
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "stocksent"


def default_state_path() -> Path:
    """The state file used when `--state` is not given."""
    return state_dir() / STATE_FILE_NAME


class StateError(ValueError):
    """The state file exists but cannot be used; the message names it."""


@dataclass
class SymbolState:
    """What is known to be published for one symbol."""

    high_water_id: int | None = None
    pending_top_id: int | None = None
    pending_max_id: int | None = None

    @property
    def has_gap(self) -> bool:
        """Paging back was interrupted: (high_water_id, pending_max_id] is still to fetch."""
        return self.pending_max_id is not None


@dataclass
class ProducerState:
    """Every symbol's state plus recently published ids (oldest first)."""

    symbols: dict[str, SymbolState] = field(default_factory=dict)
    recent_ids: list[int] = field(default_factory=list)

    def symbol(self, name: str) -> SymbolState:
        """The state of `name`, created empty on first use."""
        return self.symbols.setdefault(name, SymbolState())


class FileStateStore:
    """Loads and atomically saves `ProducerState` as JSON at `path`."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    def load(self) -> ProducerState:
        """The saved state, or an empty one when the file does not exist yet."""
        try:
            raw = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return ProducerState()
        except OSError as err:
            raise StateError(f"state file {self.path}: cannot read: {err}") from None
        try:
            data = json.loads(raw)
            return _from_json(data)
        except (ValueError, TypeError, KeyError, AttributeError) as err:
            raise StateError(f"state file {self.path}: not a valid state: {err}") from None

    def save(self, state: ProducerState) -> None:
        """Writes to a temporary file beside the target, fsyncs, then renames over it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        payload = json.dumps(_to_json(state), indent=1, sort_keys=True).encode()
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _to_json(state: ProducerState) -> dict[str, Any]:
    return {
        "version": FORMAT_VERSION,
        "symbols": {
            name: {
                "high_water_id": s.high_water_id,
                "pending_top_id": s.pending_top_id,
                "pending_max_id": s.pending_max_id,
            }
            for name, s in sorted(state.symbols.items())
        },
        "recent_ids": list(state.recent_ids),
    }


def _from_json(data: Any) -> ProducerState:
    if not isinstance(data, dict) or data.get("version") != FORMAT_VERSION:
        raise ValueError(f"expected an object with version {FORMAT_VERSION}")
    symbols = {
        str(name): SymbolState(
            _opt_int(entry.get("high_water_id")),
            _opt_int(entry.get("pending_top_id")),
            _opt_int(entry.get("pending_max_id")),
        )
        for name, entry in data.get("symbols", {}).items()
    }
    return ProducerState(symbols, _ints(data.get("recent_ids", [])))


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _ints(values: Iterable[Any]) -> list[int]:
    return [int(v) for v in values]
