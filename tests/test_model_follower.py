"""stream.model_follower with a real store directory and fake models: which version is loaded,
handed over once, refused (with one log line and a count) and not retried unasked; SIGHUP
(the wake event) checks at once. Driven by calling `check()`, except for the one thread test."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from model.smoke import SAMPLE_TEXTS
from model.store import CURRENT_NAME, ModelStore
from stream.metrics import RELOAD_OUTCOMES, ClassifierMetrics
from stream.model_follower import ModelFollower, VersionRefusedError, load_version

P = "stocksent_classifier_"


class FakeModel:
    """Scores every text with the probability its directory's `probability` file holds."""

    def __init__(self, version: str, probability: float) -> None:
        self.version = version
        self.probability = probability

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        return np.full(len(texts), self.probability, dtype=np.float32)


class FakeLoader:
    """Loads a fake version directory; a `damaged` file in it makes loading fail as
    TensorFlow would (a long, multi-line error). Counts loads; may wait on a gate."""

    def __init__(self) -> None:
        self.loaded: list[str] = []
        self.gate: threading.Event | None = None

    def __call__(self, directory: Path) -> FakeModel:
        if self.gate is not None:
            assert self.gate.wait(timeout=10)
        self.loaded.append(directory.name)
        if (directory / "damaged").exists():
            raise OSError("Unable to open table file variables.index: Data loss\n" + "x\n" * 50)
        manifest = json.loads((directory / "manifest.json").read_text())
        return FakeModel(manifest["model_version"], float((directory / "probability").read_text()))


def make_version(
    root: Path, version: str, probability: float, recorded: float | None = None
) -> Path:
    """A fake exported model: saved_model.pb, a manifest recording smoke probabilities
    (`recorded`, default the model's own), and the probability the fake model scores."""
    directory = root / version
    directory.mkdir(parents=True)
    (directory / "saved_model.pb").write_bytes(b"fake")
    (directory / "probability").write_text(str(probability))
    smoke = {
        "texts": list(SAMPLE_TEXTS),
        "probabilities": [probability if recorded is None else recorded] * len(SAMPLE_TEXTS),
        "tolerance": 1e-3,
    }
    manifest = {"model_version": version, "smoke_check": smoke}
    (directory / "manifest.json").write_text(json.dumps(manifest))
    return directory


@pytest.fixture
def store(tmp_path: Path) -> ModelStore:
    sources = tmp_path / "sources"
    store = ModelStore.init(tmp_path / "store", make_version(sources, "v1", 0.7))
    store.add_version(make_version(sources, "v2", 0.2))
    return store


def follower(store: ModelStore, loader: FakeLoader | None = None) -> tuple[ModelFollower, Any]:
    registry = CollectorRegistry()
    metrics = ClassifierMetrics(registry)
    made = ModelFollower(store, "v1", loader or FakeLoader(), metrics, poll_s=3600)
    return made, registry


def reloads(registry: CollectorRegistry) -> dict[str, float]:
    return {
        outcome: registry.get_sample_value(P + "model_reloads_total", {"outcome": outcome}) or 0
        for outcome in RELOAD_OUTCOMES
    }


def test_every_outcome_is_exposed_at_zero_from_the_start(store: ModelStore) -> None:
    _, registry = follower(store)
    for outcome in RELOAD_OUTCOMES:
        assert registry.get_sample_value(P + "model_reloads_total", {"outcome": outcome}) == 0


def test_nothing_happens_while_current_is_the_serving_version(store: ModelStore) -> None:
    loader = FakeLoader()
    made, registry = follower(store, loader)
    assert made.check() is None and made.check(forced=True) is None
    assert made.take() is None and loader.loaded == []
    assert set(reloads(registry).values()) == {0}


def test_a_promoted_version_is_loaded_verified_and_handed_over_once(store: ModelStore) -> None:
    loader = FakeLoader()
    made, registry = follower(store, loader)
    store.promote("v2", by="test", reason="test")
    assert made.check() == "loaded"
    predictor = made.take()
    assert predictor is not None and predictor.version == "v2"
    assert made.take() is None  # once
    assert made.check() is None and loader.loaded == ["v2"]  # not loaded again
    assert reloads(registry)["loaded"] == 1
    assert made.last_load_s is not None
    store.rollback(by="test")  # back to v1: loaded again, handed over
    assert made.check() == "loaded" and made.take().version == "v1"  # type: ignore[union-attr]


def test_a_newer_version_replaces_one_not_yet_taken(store: ModelStore, tmp_path: Path) -> None:
    made, _ = follower(store)
    store.add_version(make_version(tmp_path / "more", "v3", 0.4))
    store.promote("v2", by="test", reason="test")
    made.check()
    store.promote("v3", by="test", reason="test")
    made.check()
    assert made.take().version == "v3"  # type: ignore[union-attr]
    assert made.take() is None


@pytest.mark.parametrize(
    ("broken", "outcome", "why"),
    [
        ("damaged", "failed_load", "OSError: Unable to open table file variables.index"),
        ("smoke", "failed_smoke_check", "sample probabilities differ"),
        ("renamed", "failed_load", "its manifest names version 'v2'"),
    ],
)
def test_a_broken_version_is_refused_once_with_one_line_and_not_retried_unasked(
    store: ModelStore,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    broken: str,
    outcome: str,
    why: str,
) -> None:
    sources = tmp_path / "broken"
    if broken == "damaged":
        directory = make_version(sources, "bad", 0.3)
        (directory / "damaged").write_text("")
        store.add_version(directory)
    elif broken == "smoke":
        store.add_version(make_version(sources, "bad", 0.3, recorded=0.35))
    else:  # a copy of v2 put under another name: its manifest says v2
        bad = store.versions_dir / "bad"
        bad.mkdir()
        for item in store.version_dir("v2").iterdir():
            (bad / item.name).write_bytes(item.read_bytes())
    loader = FakeLoader()
    made, registry = follower(store, loader)
    store.promote("bad", by="test", reason="test")
    caplog.set_level(logging.DEBUG, logger="stream.model_follower")

    assert made.check() == outcome
    assert made.take() is None  # the old model keeps serving
    [line] = [r for r in caplog.records if r.levelno >= logging.INFO]
    assert line.levelno == logging.WARNING and line.exc_info is None
    message = line.getMessage()
    assert "\n" not in message and why in message and "still serving v1" in message
    assert reloads(registry)[outcome] == 1
    assert "CURRENT names bad, refused" in made.status()

    for _ in range(3):  # every poll: not tried again
        assert made.check() is None
    assert reloads(registry)[outcome] == 1
    tried = len(loader.loaded)
    assert made.check(forced=True) == outcome  # SIGHUP: tried again
    assert reloads(registry)[outcome] == 2
    assert len(loader.loaded) == tried + (broken != "renamed")

    store.promote("v2", by="test", reason="test")  # CURRENT moves on: taken over
    assert made.check() == "loaded" and made.take().version == "v2"  # type: ignore[union-attr]
    assert made.status() == ""
    store.promote("bad", by="test", reason="test")  # named again after another: tried again
    assert made.check() == outcome


def test_current_naming_a_version_the_store_lacks_is_refused(store: ModelStore) -> None:
    made, registry = follower(store)
    (store.root / CURRENT_NAME).write_text("v9\n")
    assert made.check() == "failed_store"
    assert made.check() is None
    assert reloads(registry)["failed_store"] == 1


def test_an_unreadable_current_is_logged_once(
    store: ModelStore, caplog: pytest.LogCaptureFixture
) -> None:
    made, registry = follower(store)
    (store.root / CURRENT_NAME).write_text("../../etc\n")
    assert made.check() == "failed_store"
    assert made.check() is None and made.check() is None
    assert reloads(registry)["failed_store"] == 1
    assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) == 1
    assert made.status().startswith("model store unreadable")


def test_start_up_refuses_a_broken_current_version(store: ModelStore, tmp_path: Path) -> None:
    store.add_version(make_version(tmp_path / "broken", "bad", 0.3, recorded=0.9))
    with pytest.raises(VersionRefusedError) as refused:
        load_version(store, "bad", FakeLoader())
    assert refused.value.outcome == "failed_smoke_check"
    assert load_version(store, "v1", FakeLoader()).version == "v1"


def test_the_wake_event_checks_at_once_on_the_followers_own_thread(store: ModelStore) -> None:
    # poll_s is an hour: only the wake (SIGHUP) explains a check. The load waits at a gate,
    # so the test sees it run on the follower's thread while this one goes on.
    loader = FakeLoader()
    loader.gate = threading.Event()
    made, registry = follower(store, loader)
    made.start()
    try:
        store.promote("v2", by="test", reason="test")
        made.wake.set()
        assert made.take() is None  # loading has not finished: nothing to take yet
        loader.gate.set()
        handed = threading.Event()

        def taken() -> bool:
            predictor = made.take()
            if predictor is not None:
                assert predictor.version == "v2"
                handed.set()
            return handed.is_set()

        from tests.polling import wait_for

        wait_for(taken, timeout=10, what="the follower to hand v2 over", interval=0.01)
        assert loader.loaded == ["v2"]
        assert reloads(registry)["loaded"] == 1
    finally:
        made.stop()
    assert made._thread is not None and not made._thread.is_alive()


def test_without_a_wake_the_thread_checks_every_poll_interval(store: ModelStore) -> None:
    registry = CollectorRegistry()
    made = ModelFollower(store, "v1", FakeLoader(), ClassifierMetrics(registry), poll_s=0.05)
    made.start()
    try:
        store.promote("v2", by="test", reason="test")
        from tests.polling import wait_for

        wait_for(lambda: reloads(registry)["loaded"] == 1, timeout=10, what="a poll to load v2")
        assert not made.wake.is_set()
        assert made.take().version == "v2"  # type: ignore[union-attr]
    finally:
        made.stop()
