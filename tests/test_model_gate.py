"""The gate (model.gate): promote only a candidate better than noise that does not forget.

Every expected verdict is computed here from the counts that decide it (the exact binomial
tail of McNemar's test), not typed in."""

from __future__ import annotations

import math

import numpy as np
import pytest

from model.gate import BASE_TOLERANCE, SIGNIFICANCE_LEVEL, Scored, judge


def scored(n: int, only_candidate: int, only_current: int, both_wrong: int = 0) -> Scored:
    """n messages; the candidate alone right on `only_candidate`, the current model alone on
    `only_current`, both wrong on `both_wrong`, both right on the rest. Tags alternate."""
    labels = np.arange(n) % 2
    right = np.where(labels == 1, 0.9, 0.1)
    wrong = 1.0 - right
    candidate, current = right.copy(), right.copy()
    cut = np.cumsum([only_candidate, only_current, both_wrong])
    current[: cut[0]] = wrong[: cut[0]]
    candidate[cut[0] : cut[1]] = wrong[cut[0] : cut[1]]
    candidate[cut[1] : cut[2]] = wrong[cut[1] : cut[2]]
    current[cut[1] : cut[2]] = wrong[cut[1] : cut[2]]
    return Scored(labels, candidate, current)


def mcnemar_p(a: int, b: int) -> float:
    """Exact two-sided McNemar p on the discordant counts, from its definition."""
    n = a + b
    return min(1.0, 2 * sum(math.comb(n, i) for i in range(min(a, b) + 1)) / 2**n)


@pytest.mark.parametrize(
    ("only_candidate", "only_current"), [(40, 15), (30, 20), (20, 20), (10, 30), (25, 10)]
)
def test_the_held_out_verdict_follows_mcnemar(only_candidate: int, only_current: int) -> None:
    decision = judge(scored(1000, only_candidate, only_current))
    expected = only_candidate > only_current and (
        round(mcnemar_p(only_candidate, only_current), 3) < SIGNIFICANCE_LEVEL
    )
    assert decision.promote is expected, decision.reason
    paired = decision.holdout["paired"]
    assert (paired["only_a_right"], paired["only_b_right"]) == (only_candidate, only_current)
    assert paired["mcnemar_p"] == round(mcnemar_p(only_candidate, only_current), 3)
    accuracy = decision.holdout["candidate"]["accuracy"] - decision.holdout["current"]["accuracy"]
    assert accuracy == pytest.approx((only_candidate - only_current) / 1000)


def test_reports_carry_balanced_accuracy_and_roc_auc() -> None:
    decision = judge(scored(200, 30, 5, both_wrong=10))
    for side in ("candidate", "current"):
        report = decision.holdout[side]
        assert {"accuracy", "balanced_accuracy", "roc_auc", "n"} <= set(report)
    # tags alternate and errors fall on both tags alike here: balanced = plain accuracy
    current = decision.holdout["current"]
    assert current["accuracy"] == pytest.approx((200 - 30 - 10) / 200)
    assert decision.evidence()["threshold"] == 0.5


@pytest.mark.parametrize("base_change", [-2 * BASE_TOLERANCE, -BASE_TOLERANCE / 2, 0.01])
def test_the_base_test_split_guards_against_forgetting(base_change: float) -> None:
    held = scored(1000, 60, 10)  # a clear win on the held-out slice
    n = 2000
    # base: the current model alone right on `lost` messages when the candidate forgets
    lost = round(-base_change * n) if base_change < 0 else 0
    gained = round(base_change * n) if base_change > 0 else 0
    base = scored(n, gained, lost)
    decision = judge(held, base)
    drop = (lost - gained) / n
    assert decision.promote is (drop <= BASE_TOLERANCE), decision.reason
    assert decision.checks["base_test_kept"] is (drop <= BASE_TOLERANCE)
    if not decision.promote:
        assert "forgets" in decision.reason


def test_a_loss_and_noise_are_told_apart_in_the_reason() -> None:
    assert "not right more often" in judge(scored(500, 5, 9)).reason
    assert "within noise" in judge(scored(500, 12, 9)).reason


def test_mismatched_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="same non-empty messages"):
        Scored(np.array([1, 0]), np.array([0.5]), np.array([0.5, 0.5]))
