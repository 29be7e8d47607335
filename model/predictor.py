"""`Predictor`: the exported SavedModel, loaded once, as a batch function."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

PRETRAINED_DIR = Path(__file__).resolve().parent / "pretrained"
MANIFEST_NAME = "manifest.json"


class Predictor:
    """Probability of bullish for raw message texts, from an exported model."""

    def __init__(self, serve: Any, path: Path, manifest: dict[str, Any]) -> None:
        self._loaded: Any = None  # the restored SavedModel, kept alive with its resources
        self._serve = serve
        self.path = path
        self.manifest = manifest
        self.version: str = str(manifest["model_version"])

    @classmethod
    def load(cls, path: str | Path | None = None, warmup: bool = True) -> Predictor:
        """Load an exported model directory (default: the committed `PRETRAINED_DIR`).

        Raises FileNotFoundError naming the directory when it holds no model.
        """
        directory = Path(path) if path is not None else PRETRAINED_DIR
        manifest_path = directory / MANIFEST_NAME
        if not (directory / "saved_model.pb").is_file() or not manifest_path.is_file():
            raise FileNotFoundError(
                f"{directory}: not an exported model (needs saved_model.pb and {MANIFEST_NAME})"
            )
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        return cls.open_savedmodel(directory, manifest, warmup)

    @classmethod
    def open_savedmodel(
        cls, directory: str | Path, manifest: dict[str, Any], warmup: bool = True
    ) -> Predictor:
        """Load a SavedModel with a manifest given by the caller (used while
        exporting, before manifest.json exists)."""
        import tensorflow as tf

        from model.serving import OUTPUT_KEY, SIGNATURE_NAME

        directory = Path(directory)
        loaded = tf.saved_model.load(str(directory))
        signature = loaded.signatures[SIGNATURE_NAME]

        def serve(batch: Any) -> Any:
            return signature(messages=batch)[OUTPUT_KEY]

        predictor = cls(serve, directory, manifest)
        predictor._loaded = loaded
        if warmup:
            predictor.warm_up()
        return predictor

    def warm_up(self) -> None:
        """Run the graph once on small and full-length batches so that the first
        real batch does not pay tracing costs."""
        self.predict(["$SPY warm up 🚀"])
        self.predict(["$SPY " + "warm up " * 30] * 32)

    def predict(self, texts: Sequence[str | bytes]) -> np.ndarray:
        """Probability of bullish per text: float32, shape (len(texts),).

        Any string is accepted (empty, emoji, lone surrogates, 100 KB): the
        graph normalises and truncates it. Each call pads to its own longest
        message.
        """
        if len(texts) == 0:
            return np.zeros((0,), dtype=np.float32)
        import tensorflow as tf

        from model.text import to_utf8

        batch = tf.constant([to_utf8(t) for t in texts], dtype=tf.string)
        return np.asarray(self._serve(batch).numpy(), dtype=np.float32).reshape(-1)
