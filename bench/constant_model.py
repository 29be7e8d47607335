"""A stand-in for the model that costs nothing: the benchmark drains with it
(`--model py:bench.constant_model:predictor`) to measure the classifier's Kafka path alone."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

SPEC = "py:bench.constant_model:predictor"


class ConstantPredictor:
    """P(bullish) = 0.5 for every text, without looking at it."""

    version = "constant"

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        return np.full(len(texts), 0.5, dtype=np.float32)


def predictor() -> ConstantPredictor:
    return ConstantPredictor()
