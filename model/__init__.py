"""The StockTwits sentiment LSTM: normalisation, training, export and loading.

Importing this package does not import TensorFlow; `Predictor` does when it loads.
"""

from __future__ import annotations

from typing import Literal

from model.metrics import BULLISH_THRESHOLD
from model.predictor import PRETRAINED_DIR, Predictor

__all__ = ["BULLISH_THRESHOLD", "PRETRAINED_DIR", "Predictor", "label_for"]


def label_for(probability: float) -> Literal["bullish", "bearish"]:
    """The label of a bullish probability (`>= BULLISH_THRESHOLD` is bullish)."""
    return "bullish" if probability >= BULLISH_THRESHOLD else "bearish"
