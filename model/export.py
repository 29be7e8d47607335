"""Export: SavedModel + manifest.json (+ MODEL_CARD.md from `model.card`)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras

from model.predictor import MANIFEST_NAME
from model.serving import PAD_MULTIPLE, SentimentModule, save_serving_model
from model.text import MAX_INPUT_BYTES, MAX_TOKENS
from model.vocab import save_vocabulary

# The vocabulary lives inside the graph; this copy is for people and tools
# (e.g. bench/model_speed.py rebuilds the seed configuration with it).
VOCABULARY_NAME = "vocabulary.txt"

MANIFEST_FORMAT = 1
# Files that make up the model proper; their bytes define the model version.
HASHED_GLOBS = ("saved_model.pb", "variables/*", "assets/*", VOCABULARY_NAME)

SEQUENCE_POLICY = {
    "max_input_bytes": MAX_INPUT_BYTES,
    "max_tokens": MAX_TOKENS,
    "truncation": "keep the first max_tokens tokens",
    "padding": f"right, per batch, to the longest message rounded up to a multiple of "
    f"{PAD_MULTIPLE}; padding id 0 is masked",
}


def hashed_files(directory: str | Path) -> list[Path]:
    """The SavedModel files whose bytes define the model version, sorted."""
    directory = Path(directory)
    found = {p for pattern in HASHED_GLOBS for p in directory.glob(pattern) if p.is_file()}
    return sorted(found, key=lambda p: p.relative_to(directory).as_posix())


def content_hash(directory: str | Path) -> str:
    """SHA-256 over (relative path, bytes) of every hashed file."""
    directory = Path(directory)
    digest = hashlib.sha256()
    for path in hashed_files(directory):
        digest.update(path.relative_to(directory).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def export_savedmodel(
    network: keras.Model,
    vocabulary: Sequence[str],
    directory: str | Path,
    jit_compile: bool,
    pooling: str,
) -> Path:
    """Write the serving SavedModel (raw strings in, probability out) to `directory`.

    An existing SavedModel there is replaced; other files are left alone.
    """
    directory = Path(directory)
    for stale in (
        "saved_model.pb",
        "fingerprint.pb",
        "variables",
        "assets",
        MANIFEST_NAME,
        VOCABULARY_NAME,
    ):
        target = directory / stale
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
    directory.mkdir(parents=True, exist_ok=True)
    save_serving_model(SentimentModule(network, vocabulary, jit_compile, pooling), str(directory))
    save_vocabulary(vocabulary, directory / VOCABULARY_NAME)
    return directory


def write_manifest(directory: str | Path, fields: dict[str, Any]) -> dict[str, Any]:
    """Write manifest.json: the given fields plus version, hash and file list."""
    import tensorflow as tf

    directory = Path(directory)
    digest = content_hash(directory)
    manifest = {
        "format": MANIFEST_FORMAT,
        "model_version": digest[:16],
        "content_sha256": digest,
        "hashed_files": [p.relative_to(directory).as_posix() for p in hashed_files(directory)],
        "created_at": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        "tensorflow_version": tf.__version__,
        "keras_version": keras.__version__,
        "signature": {
            "name": "serving_default",
            "input": {"messages": "tf.string [batch], raw message text"},
            "output": {"probability": "tf.float32 [batch], probability of bullish"},
        },
        "sequence_policy": SEQUENCE_POLICY,
        **fields,
    }
    (directory / MANIFEST_NAME).write_text(
        json.dumps(manifest, indent=2, sort_keys=False) + "\n", encoding="utf-8"
    )
    return manifest
