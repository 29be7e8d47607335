"""The model as the service sees it: a batch of texts in, P(bullish) out, and a version.

The real implementation is `model.Predictor`; anything with the same two members works,
which is how unit tests use an in-memory fake and `--model py:module:factory` plugs in a
stand-in without TensorFlow.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from model import label_for  # the one decision rule, re-exported for the service

__all__ = ["SentimentPredictor", "label_for", "load_predictor"]


@runtime_checkable
class SentimentPredictor(Protocol):
    """What the classifier needs from a model."""

    @property
    def version(self) -> str:
        """The model version written into every output record."""
        ...

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        """P(bullish) per text, float32, same order and length as `texts`."""
        ...


def load_predictor(
    spec: str, inference_threads: int = 0, concurrent_calls: int = 1
) -> SentimentPredictor:
    """Loads the model named by `--model`.

    Empty: the committed pretrained artifact; `py:package.module:factory`: whatever the
    factory returns (for tests and custom models); anything else: an exported model directory.
    `inference_threads` > 0 caps TensorFlow's thread pools for `concurrent_calls` calls at
    once (set before the model loads).
    """
    if spec.startswith("py:"):
        _, module_name, attribute = spec.split(":")
        factory = getattr(importlib.import_module(module_name), attribute)
        predictor = factory()
    else:
        from model import Predictor  # type: ignore[attr-defined,unused-ignore]
        from model.machine import limit_tensorflow_threads

        limit_tensorflow_threads(inference_threads, concurrent_calls)
        predictor = Predictor.load(spec or None)
    if not isinstance(predictor, SentimentPredictor):
        raise TypeError(f"--model {spec!r}: {predictor!r} has no predict() and version")
    return predictor
