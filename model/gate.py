"""The gate: does a candidate model serve instead of the current one?

Both models are scored on the same held-out messages: the newest `holdout_fraction` of
the learner's window by `created_at`, which the candidate never trained on. The candidate
is promoted only when all of these hold:

1. it is right more often than the current model on the held-out slice;
2. by more than noise: the exact McNemar test on the messages where exactly one of the two
   is right gives p < `SIGNIFICANCE_LEVEL` (a paired test: both judged on one slice);
3. when base data is given, its accuracy on the base test split is no worse than the
   current model's minus `BASE_TOLERANCE` (the guard against forgetting old skills).

Authors' tags are skewed, so each side's report carries balanced accuracy and ROC AUC beside
accuracy. The decision threshold stays at 0.5 (`model.metrics.BULLISH_THRESHOLD`): moving it
is only worth it where it helps on the held-out slice and on the base split alike, which is
not shown here. NumPy only: no TensorFlow, no Kafka.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from model.metrics import (
    BULLISH_THRESHOLD,
    balanced_accuracy,
    classification_report,
    correct,
    paired_comparison,
)

SIGNIFICANCE_LEVEL = 0.05
# The candidate may lose at most half a point of base test accuracy (0.005 as a fraction).
BASE_TOLERANCE = 0.005


@dataclass(frozen=True)
class Scored:
    """Tags (1 = bullish) and both models' probabilities of bullish on the same messages."""

    labels: np.ndarray
    candidate: np.ndarray
    current: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.labels)
        if n == 0 or len(self.candidate) != n or len(self.current) != n:
            raise ValueError(
                f"need the same non-empty messages for both models: {n} tags, "
                f"{len(self.candidate)} and {len(self.current)} probabilities"
            )


@dataclass(frozen=True)
class Decision:
    """The gate's verdict, its reason in words and the figures it rests on."""

    promote: bool
    reason: str
    holdout: dict[str, Any]
    base_test: dict[str, Any] | None = None
    checks: dict[str, bool] = field(default_factory=dict)

    def evidence(self) -> dict[str, Any]:
        """JSON-ready figures for the history line and the manifest."""
        return {
            "holdout": self.holdout,
            "base_test": self.base_test,
            "checks": self.checks,
            "threshold": BULLISH_THRESHOLD,
            "significance_level": SIGNIFICANCE_LEVEL,
            "base_tolerance": BASE_TOLERANCE,
        }


def report(labels: np.ndarray, probabilities: np.ndarray) -> dict[str, Any]:
    """Accuracy, balanced accuracy, ROC AUC (and the rest of `classification_report`)."""
    out = classification_report(labels, probabilities)
    out["balanced_accuracy"] = round(balanced_accuracy(labels, probabilities), 6)
    out["bullish_share"] = round(float(np.mean(np.asarray(labels) == 1)), 6)
    return out


def compare(scored: Scored) -> dict[str, Any]:
    """Both models' reports and their paired comparison (candidate minus current)."""
    return {
        "candidate": report(scored.labels, scored.candidate),
        "current": report(scored.labels, scored.current),
        "paired": paired_comparison(
            correct(scored.labels, scored.candidate), correct(scored.labels, scored.current)
        ),
    }


def judge(holdout: Scored, base_test: Scored | None = None) -> Decision:
    """The verdict for a candidate against the current model (see the module docstring)."""
    held = compare(holdout)
    paired = held["paired"]
    better = paired["only_a_right"] > paired["only_b_right"]
    significant = better and paired["mcnemar_p"] < SIGNIFICANCE_LEVEL
    checks = {"more_often_right": better, "significant": significant}
    reasons = []
    accuracy = (held["candidate"]["accuracy"], held["current"]["accuracy"])
    if not better:
        reasons.append(
            f"not right more often on the held-out slice ({accuracy[0]:.4f} vs {accuracy[1]:.4f})"
        )
    elif not significant:
        reasons.append(
            f"better on the held-out slice ({accuracy[0]:.4f} vs {accuracy[1]:.4f}) but within "
            f"noise (McNemar p {paired['mcnemar_p']:.3f} >= {SIGNIFICANCE_LEVEL})"
        )
    base = None
    if base_test is not None:
        base = compare(base_test)
        floor = base["current"]["accuracy"] - BASE_TOLERANCE
        kept = base["candidate"]["accuracy"] >= floor - 1e-12
        checks["base_test_kept"] = kept
        if not kept:
            reasons.append(
                f"forgets: base test accuracy {base['candidate']['accuracy']:.4f} is below the "
                f"current model's {base['current']['accuracy']:.4f} minus {BASE_TOLERANCE}"
            )
    promote = not reasons
    if promote:
        reason = (
            f"right more often on the held-out slice ({accuracy[0]:.4f} vs {accuracy[1]:.4f}, "
            f"McNemar p {paired['mcnemar_p']:.3f})"
        )
        if base is not None:
            reason += (
                f"; base test {base['candidate']['accuracy']:.4f} vs "
                f"{base['current']['accuracy']:.4f}"
            )
    else:
        reason = "; ".join(reasons)
    return Decision(promote, reason, held, base, checks)
