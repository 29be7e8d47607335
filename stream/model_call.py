"""One batch's call to the model, on a worker thread: P(bullish) per text, and the texts the
model fails on isolated so a single poison text costs itself only, not its batch."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from stream.decode import DeadLetterReason, Rejection
from stream.decoding import DecodedBatch
from stream.kafka_port import InputRecord
from stream.metrics import ClassifierMetrics
from stream.predictor import SentimentPredictor

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Scores:
    """P(bullish) per message of the batch (None where the model failed on it), and the
    records it failed on, to dead-letter."""

    probabilities: list[float | None]
    failed: list[tuple[InputRecord, Rejection]] = field(default_factory=list)


def score(
    predictor: SentimentPredictor,
    decoded: DecodedBatch,
    metrics: ClassifierMetrics,
    taken_at: float,
) -> Scores:
    """Scores the batch's messages in one call; when that call fails, one message at a time.
    `taken_at`: when the batch was handed over (perf_counter), for the scoring wait."""
    messages = decoded.messages
    if not messages:
        return Scores([])
    started = time.perf_counter()
    metrics.scoring_wait_seconds.observe(started - taken_at)
    try:
        values = checked(predictor.predict([m.text for m in messages]), len(messages))
        metrics.inference_seconds.observe(time.perf_counter() - started)
        return Scores(list(values))
    except Exception:
        log.exception("batched prediction of %d messages failed; isolating", len(messages))
        metrics.error("predict")
    scores = Scores([])
    for message, record in zip(messages, decoded.sources, strict=True):
        try:
            scores.probabilities.append(checked(predictor.predict([message.text]), 1)[0])
        except Exception as err:
            scores.probabilities.append(None)
            detail = f"model failed: {type(err).__name__}: {err}"
            scores.failed.append((record, Rejection(DeadLetterReason.PREDICTION_FAILED, detail)))
    return scores


def checked(probabilities: Any, expected: int) -> list[float]:
    """The model's output as Python floats, or ValueError when it is not `expected` finite
    probabilities (a NaN must not be published as a label)."""
    array = np.asarray(probabilities, dtype=np.float64).reshape(-1)
    if array.shape[0] != expected:
        raise ValueError(f"model returned {array.shape[0]} probabilities for {expected} texts")
    if not np.all(np.isfinite(array)) or array.min() < 0.0 or array.max() > 1.0:
        raise ValueError("model returned a probability outside [0, 1]")
    values: list[float] = array.tolist()
    return values
