"""The smoke check a model version must pass before it serves.

At export, the manifest records the exported model's probabilities for a few fixed sample
texts (`smoke_check`). Before a classifier swaps a new version in, it loads the version,
scores the same texts and compares: a version whose files were damaged, mixed up with
another version's or loaded wrongly gives other figures and is refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

MANIFEST_FIELD = "smoke_check"
# Chosen to cover the normaliser's cases: tickers, cashtag prices, users, links, emoji,
# an empty text and a long one.
SAMPLE_TEXTS: tuple[str, ...] = (
    "$SPY breaking out, loading calls 🚀",
    "$AAPL looks weak here, puts are printing",
    "@trader what a dump today $TSLA -5% https://example.com/chart",
    "holding $NVDA through earnings at $120.50",
    "",
    "$QQQ " + "range bound chop again " * 12,
)
# The same graph on other hardware or thread counts differs in the last float32 bits only.
TOLERANCE = 1e-3


class SmokeCheckError(ValueError):
    """The version must not serve; the message says which check failed."""


class _Scorer(Protocol):
    def predict(self, texts: Sequence[str]) -> np.ndarray: ...


def record(predictor: _Scorer) -> dict[str, Any]:
    """The manifest's `smoke_check` field for a freshly exported model."""
    probabilities = np.asarray(predictor.predict(list(SAMPLE_TEXTS)), dtype=np.float64)
    return {
        "texts": list(SAMPLE_TEXTS),
        "probabilities": [round(float(p), 6) for p in probabilities],
        "tolerance": TOLERANCE,
    }


def check(predictor: _Scorer, manifest: dict[str, Any]) -> None:
    """Raise SmokeCheckError unless the model scores the sample texts with probabilities
    in [0, 1], one per text, and reproduces those its manifest records (when it records
    any: a manifest from before smoke checks is checked on range and shape only)."""
    recorded = manifest.get(MANIFEST_FIELD) or {}
    texts = list(recorded.get("texts") or SAMPLE_TEXTS)
    try:
        scores = np.asarray(predictor.predict(texts), dtype=np.float64).reshape(-1)
    except Exception as err:
        raise SmokeCheckError(
            f"scoring the sample texts failed: {type(err).__name__}: {err}"
        ) from err
    if scores.shape[0] != len(texts):
        raise SmokeCheckError(f"{scores.shape[0]} probabilities for {len(texts)} sample texts")
    if not np.all(np.isfinite(scores)) or scores.min() < 0.0 or scores.max() > 1.0:
        raise SmokeCheckError(f"probabilities outside [0, 1]: {scores.round(4).tolist()}")
    expected = recorded.get("probabilities")
    if expected is None:
        return
    tolerance = float(recorded.get("tolerance", TOLERANCE))
    worst = float(np.max(np.abs(scores - np.asarray(expected, dtype=np.float64))))
    if worst > tolerance:
        raise SmokeCheckError(
            f"sample probabilities differ from the manifest's by {worst:.4g} "
            f"(tolerance {tolerance:g}): the files are not the model the manifest describes"
        )
