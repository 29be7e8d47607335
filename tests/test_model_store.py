"""The model store: versions, CURRENT, history, promote and rollback (no TensorFlow)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from model.store import ModelStore, StoreError
from model.store_cli import main as models_main


def fake_model(directory: Path, version: str) -> Path:
    """A directory shaped like an exported model (the store never loads it)."""
    directory.mkdir(parents=True)
    (directory / "saved_model.pb").write_bytes(b"graph " + version.encode())
    (directory / "manifest.json").write_text(
        json.dumps(
            {
                "model_version": version,
                "created_at": f"2026-12-0{len(list(directory.parent.iterdir()))}T00:00:00+00:00",
                "metrics": {"test": {"accuracy": 0.79}},
            }
        )
    )
    return directory


@pytest.fixture
def store(tmp_path: Path) -> ModelStore:
    return ModelStore.init(tmp_path / "store", fake_model(tmp_path / "src" / "a", "aaaa"))


def test_init_serves_the_source_and_writes_history(store: ModelStore) -> None:
    assert store.current() == "aaaa"
    assert store.current_path.read_text() == "aaaa\n"
    assert store.versions() == ["aaaa"]
    assert (store.version_dir("aaaa") / "saved_model.pb").read_bytes() == b"graph aaaa"
    [entry] = store.history()
    assert entry["action"] == "init" and entry["current"] == "aaaa"
    assert entry["by"].startswith("person:")


def test_init_refuses_an_existing_store(store: ModelStore, tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="already a model store"):
        ModelStore.init(store.root, fake_model(tmp_path / "src" / "b", "bbbb"))


def test_promote_then_rollback_returns_to_the_previous_version(
    store: ModelStore, tmp_path: Path
) -> None:
    for version in ("bbbb", "cccc"):
        store.add_version(fake_model(tmp_path / "src" / version, version))
    store.promote("bbbb", by="learner", reason="better", evidence={"metrics": {"x": 1}})
    store.promote("cccc", by="person:me", reason="by hand")
    assert store.current() == "cccc"
    assert store.rollback(by="person:me")["current"] == "bbbb"
    assert store.rollback(by="person:me")["current"] == "aaaa"
    with pytest.raises(StoreError, match="nothing to roll back to"):
        store.rollback(by="person:me")
    actions = [(e["action"], e["parent"], e["current"]) for e in store.history()]
    assert actions == [
        ("init", None, "aaaa"),
        ("promote", "aaaa", "bbbb"),
        ("promote", "bbbb", "cccc"),
        ("rollback", "cccc", "bbbb"),
        ("rollback", "bbbb", "aaaa"),
    ]
    assert store.history()[1]["metrics"] == {"x": 1}


def test_reject_keeps_current_and_is_recorded(store: ModelStore, tmp_path: Path) -> None:
    store.add_version(fake_model(tmp_path / "src" / "bbbb", "bbbb"))
    store.reject("bbbb", by="learner", reason="not better than noise (p=0.4)")
    assert store.current() == "aaaa"
    assert store.history()[-1]["action"] == "reject"
    assert store.history()[-1]["promoted"] is False


def test_promote_refuses_unknown_and_broken_versions(store: ModelStore) -> None:
    with pytest.raises(StoreError, match="no version 'nope'"):
        store.promote("nope", by="person:me", reason="")
    (store.versions_dir / "half").mkdir()  # no manifest: not a model
    with pytest.raises(StoreError, match="no version 'half'"):
        store.promote("half", by="person:me", reason="")
    with pytest.raises(StoreError, match="not a version name"):
        store.promote("../etc", by="person:me", reason="")
    assert store.current() == "aaaa"


def test_a_torn_history_line_is_skipped(store: ModelStore) -> None:
    with store.history_path.open("a") as handle:
        handle.write('{"action": "promo')
    assert [e["action"] for e in store.history()] == ["init"]


def test_concurrent_promotions_leave_one_line_each(store: ModelStore, tmp_path: Path) -> None:
    versions = [f"v{i:03d}" for i in range(20)]
    for version in versions:
        store.add_version(fake_model(tmp_path / "src" / version, version))
    threads = [
        threading.Thread(target=store.promote, args=(v, "person:me", "race")) for v in versions
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    promotions = [e for e in store.history() if e["action"] == "promote"]
    assert sorted(e["current"] for e in promotions) == versions
    # each line's parent is the line before's version: the lock serialised them
    chain = ["aaaa"] + [e["current"] for e in promotions]
    assert [e["parent"] for e in promotions] == chain[:-1]
    assert store.current() == promotions[-1]["current"]


def test_cli_init_list_promote_rollback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "store"
    source = fake_model(tmp_path / "src" / "aaaa", "aaaa")
    assert models_main(["init", "--store", str(root), "--from", str(source)]) == 0
    ModelStore(root).add_version(fake_model(tmp_path / "src" / "bbbb", "bbbb"))
    assert models_main(["promote", "bbbb", "--store", str(root)]) == 0
    assert models_main(["list", "--store", str(root)]) == 0
    listed = capsys.readouterr().out
    assert "* bbbb" in listed and "  aaaa" in listed
    assert models_main(["rollback", "--store", str(root)]) == 0
    assert ModelStore(root).current() == "aaaa"
    assert models_main(["promote", "zzzz", "--store", str(root)]) == 2
    err = capsys.readouterr().err
    assert "no version 'zzzz'" in err and "Traceback" not in err
    assert models_main(["init", "--store", str(root)]) == 2
    assert "already a model store" in capsys.readouterr().err
    assert models_main(["init", "--store", str(root), "--exist-ok"]) == 0
    assert ModelStore(root).current() == "aaaa"
    assert models_main(["list", "--store", str(tmp_path / "none")]) == 2
    assert "models init --store" in capsys.readouterr().err


def test_bullish_prior_comes_from_the_manifest() -> None:
    from model.predictor import PRETRAINED_DIR
    from model.store import bullish_prior, read_manifest

    committed = bullish_prior(read_manifest(PRETRAINED_DIR))
    assert committed is not None and 0.5 < committed < 0.6  # SPY 2017 train: 55% bullish
    assert bullish_prior({"data": {}}) is None
    assert bullish_prior({}) is None


@pytest.mark.tensorflow
def test_evaluate_scores_a_stored_version(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`stocksent evaluate --model DIR/versions/<version>` works on any stored version."""
    from model.evaluate_cli import main as evaluate_main
    from model.predictor import PRETRAINED_DIR

    store = ModelStore.init(tmp_path / "store", PRETRAINED_DIR)
    data = tmp_path / "tagged.csv"
    data.write_text(
        'message,sentiment\n"$SPY breaking out, loading calls",bullish\n'
        '"$SPY puts printing, this dumps",bearish\n',
        encoding="utf-8",
    )
    version = store.current()
    model = str(store.version_dir(version))
    assert evaluate_main(["--model", model, "--data", str(data), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["model_version"] == version and report["n"] == 2
