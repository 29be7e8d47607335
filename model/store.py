"""The model store: exported model versions, the one being served, and every decision.

A directory shared by any number of classifiers and one learner:

    DIR/versions/<version>/   a complete exported model (SavedModel, manifest.json, card)
    DIR/CURRENT               one line: the version the classifiers serve
    DIR/history.jsonl         one JSON line per decision (init, promote, reject, rollback)

CURRENT is replaced atomically (write a temporary file, then rename), so a classifier
that reads it sees the old version or the new one, never half a line. Changes to CURRENT
and history are made under an exclusive lock on `DIR/.lock`, so a person promoting by
hand and the learner cannot interleave. Versions are never modified once added: a
version directory is copied to a temporary name and renamed into place whole.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import getpass
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from model.predictor import MANIFEST_NAME, PRETRAINED_DIR

CURRENT_NAME = "CURRENT"
HISTORY_NAME = "history.jsonl"
VERSIONS_NAME = "versions"
LOCK_NAME = ".lock"
# A version names a directory: letters, digits, dot, dash, underscore; no path tricks.
VERSION_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
LEARNER = "learner"


class StoreError(RuntimeError):
    """The store cannot do what was asked; the message says why."""


def person() -> str:
    """Who made a hand-made change, for the history: `person:<login>`."""
    try:
        return f"person:{getpass.getuser()}"
    except Exception:  # no login name in a bare container
        return "person:unknown"


def utc_now() -> str:
    """Now as ISO-8601 UTC with seconds."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def is_model_dir(directory: Path) -> bool:
    """True when `directory` holds an exported model (SavedModel and manifest)."""
    return (directory / "saved_model.pb").is_file() and (directory / MANIFEST_NAME).is_file()


def read_manifest(directory: Path) -> dict[str, Any]:
    """The manifest of an exported model; StoreError naming the directory when absent."""
    if not is_model_dir(directory):
        raise StoreError(
            f"{directory}: not an exported model (needs saved_model.pb and {MANIFEST_NAME})"
        )
    try:
        manifest: dict[str, Any] = json.loads((directory / MANIFEST_NAME).read_text("utf-8"))
    except (OSError, ValueError) as err:
        raise StoreError(f"{directory / MANIFEST_NAME}: unreadable ({err})") from err
    if not isinstance(manifest, dict) or "model_version" not in manifest:
        raise StoreError(f"{directory / MANIFEST_NAME}: no model_version")
    return manifest


def bullish_prior(manifest: dict[str, Any]) -> float | None:
    """The share of bullish tags in the data a model learned from (its prior), when its
    manifest records it: drift alerts compare the live bullish share with it."""
    share = (manifest.get("data") or {}).get("bullish_share")
    return float(share) if isinstance(share, int | float) else None


@dataclass(frozen=True)
class VersionSummary:
    """One stored version, for `stocksent models list`."""

    version: str
    created_at: str
    test_accuracy: float | None
    origin: str  # who made it: the trainer, or the learner (fine-tuned from a parent)
    serving: bool


class ModelStore:
    """A model store directory (see the module docstring)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    # ---- reading ---------------------------------------------------------------------

    @property
    def versions_dir(self) -> Path:
        """DIR/versions."""
        return self.root / VERSIONS_NAME

    @property
    def current_path(self) -> Path:
        """DIR/CURRENT."""
        return self.root / CURRENT_NAME

    @property
    def history_path(self) -> Path:
        """DIR/history.jsonl."""
        return self.root / HISTORY_NAME

    def exists(self) -> bool:
        """True when the store has been initialised (it has a CURRENT)."""
        return self.current_path.is_file()

    def require(self) -> ModelStore:
        """Self, or StoreError saying how to create the store."""
        if not self.exists():
            raise StoreError(
                f"{self.root}: not a model store (no {CURRENT_NAME}); "
                f"create it with: stocksent models init --store {self.root}"
            )
        return self

    def current(self) -> str:
        """The serving version (CURRENT's one line)."""
        self.require()
        version = self.current_path.read_text(encoding="utf-8").strip()
        _check_version_name(version)
        return version

    def version_dir(self, version: str) -> Path:
        """DIR/versions/<version> (whether or not it exists)."""
        _check_version_name(version)
        return self.versions_dir / version

    def has_version(self, version: str) -> bool:
        """True when the version directory holds an exported model."""
        return is_model_dir(self.version_dir(version))

    def versions(self) -> list[str]:
        """Stored versions, oldest first (by manifest creation time, then name)."""
        if not self.versions_dir.is_dir():
            return []
        found = []
        for path in self.versions_dir.iterdir():
            if path.is_dir() and VERSION_PATTERN.match(path.name) and is_model_dir(path):
                created = str(_safe_manifest(path).get("created_at", ""))
                found.append((created, path.name))
        return [name for _, name in sorted(found)]

    def summaries(self) -> list[VersionSummary]:
        """Every stored version with what `models list` shows."""
        serving = self.current() if self.exists() else ""
        rows = []
        for version in self.versions():
            manifest = _safe_manifest(self.version_dir(version))
            test = (manifest.get("metrics") or {}).get("test") or {}
            learned = manifest.get("learner") or {}
            origin = f"learner (from {learned.get('parent')})" if learned else "trainer"
            rows.append(
                VersionSummary(
                    version=version,
                    created_at=str(manifest.get("created_at", "?")),
                    test_accuracy=test.get("accuracy"),
                    origin=origin,
                    serving=version == serving,
                )
            )
        return rows

    def history(self) -> list[dict[str, Any]]:
        """Every decision, oldest first (a torn last line, from a crash mid-write, skipped)."""
        if not self.history_path.is_file():
            return []
        entries = []
        for line in self.history_path.read_text(encoding="utf-8").splitlines():
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if isinstance(entry, dict):
                    entries.append(entry)
        return entries

    def serving_stack(self) -> list[str]:
        """The versions that served, as a stack replayed from the history: init and promote
        push, rollback pops. Its top is CURRENT; rollback returns to the one below."""
        stack: list[str] = []
        for entry in self.history():
            action, after = entry.get("action"), entry.get("current")
            if action == "init" and after:
                stack = [after]
            elif action == "promote" and after and (not stack or stack[-1] != after):
                stack.append(after)
            elif action == "rollback" and stack:
                stack.pop()
                if after and (not stack or stack[-1] != after):
                    stack.append(after)
        return stack

    # ---- changing --------------------------------------------------------------------

    @classmethod
    def init(
        cls, root: str | Path, source: str | Path | None = None, by: str | None = None
    ) -> ModelStore:
        """Create a store at `root` serving a copy of `source` (default: the committed
        model); `by` is who, for the history (default: the person running this). An
        existing store is left as it is (StoreError)."""
        store = cls(root)
        if store.exists():
            raise StoreError(f"{store.root}: already a model store (serving {store.current()})")
        store.root.mkdir(parents=True, exist_ok=True)
        store.versions_dir.mkdir(exist_ok=True)
        version = store.add_version(Path(source) if source is not None else PRETRAINED_DIR)
        with store._locked():
            store._write_current(version)
            store._append(
                {
                    "action": "init",
                    "candidate": version,
                    "parent": None,
                    "current": version,
                    "promoted": True,
                    "by": by or person(),
                    "reason": f"store created from {Path(source or PRETRAINED_DIR).resolve()}",
                }
            )
        return store

    @classmethod
    def open_or_init(cls, root: str | Path, by: str | None = None) -> tuple[ModelStore, bool]:
        """The store at `root`, and whether it was created now: where there is none yet (no
        such directory, or an empty one) one is created serving the committed model. A
        directory with other things in it is refused (StoreError), so a mistyped path never
        turns a folder into a store."""
        store = cls(root)
        if store.exists():
            return store, False
        if store.root.exists() and (not store.root.is_dir() or any(store.root.iterdir())):
            raise StoreError(f"{store.root} is a folder but not a model store (no {CURRENT_NAME})")
        return cls.init(store.root, by=by), True

    def add_version(self, source: Path) -> str:
        """Copy an exported model into versions/<its model_version>; returns the version.
        Adding a version that is already stored is a no-op."""
        manifest = read_manifest(source)
        version = str(manifest["model_version"])
        _check_version_name(version)
        target = self.version_dir(version)
        if is_model_dir(target):
            return version
        self.versions_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{version}.", dir=self.versions_dir))
        try:
            shutil.copytree(source, staging, dirs_exist_ok=True)
            if target.exists():  # a half-copied leftover without a manifest
                shutil.rmtree(target)
            os.replace(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return version

    def promote(
        self,
        version: str,
        by: str,
        reason: str,
        evidence: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Serve `version` from now on; returns the history line written."""
        self.require()
        if not self.has_version(version):
            known = ", ".join(self.versions()) or "none"
            raise StoreError(f"{self.root}: no version {version!r} (stored: {known})")
        with self._locked():
            parent = self.current()
            self._write_current(version)
            return self._append(
                {
                    "action": "promote",
                    "candidate": version,
                    "parent": parent,
                    "current": version,
                    "promoted": True,
                    "by": by,
                    "reason": reason,
                    **(evidence or {}),
                }
            )

    def reject(
        self, version: str, by: str, reason: str, evidence: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Record that `version` was judged and not promoted; CURRENT stays."""
        self.require()
        with self._locked():
            current = self.current()
            return self._append(
                {
                    "action": "reject",
                    "candidate": version,
                    "parent": current,
                    "current": current,
                    "promoted": False,
                    "by": by,
                    "reason": reason,
                    **(evidence or {}),
                }
            )

    def rollback(self, by: str, reason: str = "rolled back by hand") -> dict[str, Any]:
        """Serve the version that served before the current one was promoted."""
        self.require()
        with self._locked():
            current = self.current()
            stack = self.serving_stack()
            if not stack or stack[-1] != current:
                stack.append(current)  # CURRENT was edited by hand: it is the top all the same
            if len(stack) < 2:
                raise StoreError(f"{self.root}: nothing to roll back to ({current} is the first)")
            target = stack[-2]
            if not self.has_version(target):
                raise StoreError(f"{self.root}: previous version {target} is no longer stored")
            self._write_current(target)
            return self._append(
                {
                    "action": "rollback",
                    "candidate": target,
                    "parent": current,
                    "current": target,
                    "promoted": True,
                    "by": by,
                    "reason": reason,
                }
            )

    # ---- internals -------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / LOCK_NAME).open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _write_current(self, version: str) -> None:
        _check_version_name(version)
        fd, temporary = tempfile.mkstemp(prefix=".CURRENT.", dir=self.root)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(version + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, self.current_path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise

    def _append(self, entry: dict[str, Any]) -> dict[str, Any]:
        line = {"at": utc_now(), **entry}
        with self.history_path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(line, sort_keys=False) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        return line


def _check_version_name(version: str) -> None:
    if not VERSION_PATTERN.match(version):
        raise StoreError(f"{version!r} is not a version name (letters, digits, . _ -)")


def _safe_manifest(directory: Path) -> dict[str, Any]:
    try:
        return read_manifest(directory)
    except StoreError:
        return {}
