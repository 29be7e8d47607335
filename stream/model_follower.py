"""Follows a model store's CURRENT: loads, warms up and verifies a new version off the loop.

`stocksent classify --model-store DIR` serves the version CURRENT names at start-up, and a
`ModelFollower` thread reads CURRENT every `--model-poll-s` seconds, and at once when its
`wake` event is set (the SIGHUP handler sets it). When CURRENT names another version, the
follower loads it on its own thread (the loop keeps consuming and publishing meanwhile) and
verifies it: its manifest names the version of its directory, it loads as a SavedModel with
the serving signature (warm-up included) and it passes `model.smoke.check`. Then it hands the
predictor over; the loop takes it with `take()` when it starts its next batch, so every batch
is scored and labeled by exactly one version (stream/service.py).

A version that fails is refused with one log line (no traceback) and a count in
`stocksent_classifier_model_reloads_total{outcome}`, and the serving version goes on. It is
not tried again at each poll: only when CURRENT names it again after naming another, or on
SIGHUP (an operator who fixed the files asks for it).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from model.smoke import SmokeCheckError, check
from model.store import ModelStore, StoreError, read_manifest
from stream.metrics import ClassifierMetrics, ReloadOutcome
from stream.predictor import SentimentPredictor

log = logging.getLogger(__name__)

# A refusal's reason is one log line: the first line of the error, at most this long
# (TensorFlow's errors run to pages).
MAX_REASON_CHARS = 300

Loader = Callable[[Path], SentimentPredictor]


class VersionRefusedError(Exception):
    """A version must not serve; `outcome` is its reloads_total label, the message why."""

    def __init__(self, version: str, outcome: ReloadOutcome, reason: str) -> None:
        super().__init__(f"model version {version} refused ({outcome}): {reason}")
        self.version = version
        self.outcome = outcome
        self.reason = reason


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    line = f"{type(err).__name__}: {text[0] if text else ''}".rstrip(": ")
    return line if len(line) <= MAX_REASON_CHARS else line[: MAX_REASON_CHARS - 3] + "..."


def load_version(store: ModelStore, version: str, load: Loader) -> SentimentPredictor:
    """The stored `version`, loaded (and warmed up) by `load` and verified; VersionRefusedError
    saying which check failed otherwise."""
    try:
        directory = store.version_dir(version)
    except StoreError as err:
        raise VersionRefusedError(version, "failed_store", str(err)) from err
    if not directory.is_dir():
        raise VersionRefusedError(version, "failed_store", f"{directory} does not exist")
    try:
        manifest = read_manifest(directory)
    except StoreError as err:
        raise VersionRefusedError(version, "failed_load", str(err)) from err
    if str(manifest["model_version"]) != version:
        raise VersionRefusedError(
            version,
            "failed_load",
            f"{directory}: its manifest names version {manifest['model_version']!r}",
        )
    try:
        predictor = load(directory)
    except Exception as err:  # whatever TensorFlow raises on damaged files
        raise VersionRefusedError(version, "failed_load", _first_line(err)) from err
    if predictor.version != version:
        raise VersionRefusedError(
            version, "failed_load", f"{directory}: loaded as version {predictor.version!r}"
        )
    try:
        check(predictor, manifest)
    except SmokeCheckError as err:
        raise VersionRefusedError(version, "failed_smoke_check", str(err)) from err
    return predictor


class ModelFollower:
    """Watches CURRENT from its own thread; hands verified versions to the loop (`take`).

    `check()` is one look at CURRENT, callable directly (the tests drive it that way);
    `start()` runs it every `poll_s` seconds and whenever `wake` is set.
    """

    def __init__(
        self,
        store: ModelStore,
        serving: str,
        load: Loader,
        metrics: ClassifierMetrics,
        poll_s: float,
        wake: threading.Event | None = None,
    ) -> None:
        self.store = store
        self.poll_s = poll_s
        self.wake = wake if wake is not None else threading.Event()
        self._load = load
        self._metrics = metrics
        # the version serving, or handed over to serve from the next batch
        self._wanted = serving
        self._refused: str | None = None  # the last version refused, not retried unasked
        self._store_error: str | None = None  # the last CURRENT read failure, logged once
        self._lock = threading.Lock()
        self._handover: SentimentPredictor | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_load_s: float | None = None  # load + warm-up + smoke check of the last one

    # ---- the loop's side ----------------------------------------------------------------

    def take(self) -> SentimentPredictor | None:
        """The verified predictor to serve from the next batch on, once; else None. Cheap:
        the loop calls it for every batch it takes."""
        if self._handover is None:  # read without the lock: a miss is seen next batch
            return None
        with self._lock:
            predictor, self._handover = self._handover, None
        return predictor

    def status(self) -> str:
        """For /readyz: what the follower has to say beyond the serving version, if any."""
        if self._store_error:
            return f"model store unreadable: {self._store_error}"
        if self._refused:
            return f"CURRENT names {self._refused}, refused"
        return ""

    # ---- the follower's side ------------------------------------------------------------

    def check(self, forced: bool = False) -> ReloadOutcome | None:
        """Reads CURRENT once; loads, verifies and hands over a new version. `forced` (on
        SIGHUP) tries again a version refused before. The outcome, or None when there was
        nothing to do."""
        try:
            version = self.store.current()
        except (StoreError, OSError) as err:
            reason = _first_line(err)
            if reason != self._store_error or forced:
                self._store_error = reason
                log.warning("model store %s: CURRENT unreadable (%s)", self.store.root, reason)
                self._metrics.reload("failed_store")
                return "failed_store"
            return None
        self._store_error = None
        if version == self._wanted:
            self._refused = None
            return None
        if version == self._refused and not forced:
            return None
        started = time.monotonic()
        try:
            predictor = load_version(self.store, version, self._load)
        except VersionRefusedError as refusal:
            self._refused = version
            log.warning("%s; still serving %s", refusal, self._wanted)
            log.debug("why %s was refused", version, exc_info=True)
            self._metrics.reload(refusal.outcome)
            return refusal.outcome
        self.last_load_s = time.monotonic() - started
        with self._lock:
            self._handover = predictor
        previous, self._wanted, self._refused = self._wanted, version, None
        self._metrics.reload("loaded")
        log.info(
            "model %s loaded, warmed up and verified in %.1fs; it replaces %s from the next batch",
            version,
            self.last_load_s,
            previous,
        )
        return "loaded"

    def start(self) -> ModelFollower:
        """Checks CURRENT every `poll_s` seconds and when `wake` is set, on a daemon thread."""
        self._thread = threading.Thread(target=self._run, name="model-follower", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Ends the thread (a load in progress is left to finish on its own, as a daemon)."""
        self._stop.set()
        self.wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            woken = self.wake.wait(self.poll_s)
            if self._stop.is_set():
                return
            if woken:
                self.wake.clear()
                log.info("SIGHUP: checking the model store's CURRENT now")
            try:
                self.check(forced=woken)
            except Exception:  # the follower must outlive anything; the loop goes on anyway
                log.exception("checking the model store failed")
