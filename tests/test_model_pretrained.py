"""The committed pretrained artifact: loads, matches its manifest, scores what it says."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from model import PRETRAINED_DIR, Predictor

MAX_ARTIFACT_BYTES = 15 * 1024 * 1024
REGRESSION_FLOOR = 0.75  # the 0.78 target is checked outside CI (see MODEL_CARD.md)

pytestmark = [
    pytest.mark.tensorflow,
    pytest.mark.skipif(
        not (PRETRAINED_DIR / "manifest.json").is_file(),
        reason=f"no pretrained model at {PRETRAINED_DIR} (run `stocksent train`)",
    ),
]


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    return json.loads((PRETRAINED_DIR / "manifest.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    return Predictor.load()


def test_manifest_matches_files(manifest: dict[str, Any]) -> None:
    from model.export import content_hash, hashed_files

    digest = content_hash(PRETRAINED_DIR)
    assert manifest["content_sha256"] == digest
    assert manifest["model_version"] == digest[:16]
    listed = [p.relative_to(PRETRAINED_DIR).as_posix() for p in hashed_files(PRETRAINED_DIR)]
    assert manifest["hashed_files"] == listed
    for key in (
        "vocabulary_size",
        "sequence_policy",
        "metrics",
        "data",
        "tensorflow_version",
        "baseline",
        "rebuild_command",
    ):
        assert key in manifest, key
    vocabulary = (PRETRAINED_DIR / "vocabulary.txt").read_text(encoding="utf-8").split("\n")[:-1]
    assert len(vocabulary) == manifest["vocabulary_size"]


def test_artifact_is_small_enough() -> None:
    total = sum(p.stat().st_size for p in PRETRAINED_DIR.rglob("*") if p.is_file())
    assert total <= MAX_ARTIFACT_BYTES, f"{total} bytes"


def test_card_names_the_version(manifest: dict[str, Any]) -> None:
    card = (PRETRAINED_DIR / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert manifest["model_version"] in card
    assert manifest["rebuild_command"] in card


def test_loads_with_version(predictor: Predictor, manifest: dict[str, Any]) -> None:
    assert predictor.version == manifest["model_version"]
    p = predictor.predict(["$SPY to the moon 🚀🚀", "$SPY puts, this is going to crash hard"])
    assert p.shape == (2,)
    assert p[0] > p[1]


def test_training_data_hashes(manifest: dict[str, Any], shared_data_dir: Path) -> None:
    from model.data import sha256_file

    for name, info in manifest["data"]["files"].items():
        assert sha256_file(shared_data_dir / name) == info["sha256"], name


def test_scores_what_the_manifest_says(
    predictor,
    manifest: dict[str, Any],
    shared_data_dir: Path,
) -> None:
    from model.data import read_split
    from model.metrics import classification_report

    test = read_split(shared_data_dir, "test")
    probabilities = np.concatenate(
        [predictor.predict(test.texts[i : i + 2048]) for i in range(0, len(test), 2048)]
    )
    report = classification_report(test.labels, probabilities)
    assert abs(report["accuracy"] - manifest["metrics"]["test"]["accuracy"]) <= 0.002
    assert report["accuracy"] >= REGRESSION_FLOOR


@pytest.mark.parametrize(
    "text",
    ["", "?!.,;:", "$SPY moon " * 10_000, "bull \ud800 run \udfff", "🚀🐻🐂", "\x00"],
    ids=["empty", "punctuation", "100KB", "lone-surrogates", "emoji-only", "nul"],
)
def test_bad_input_gets_a_probability(predictor: Predictor, text: str) -> None:
    (p,) = predictor.predict([text])
    assert 0.0 <= float(p) <= 1.0
