"""The model card's verdicts (model.card): what they claim follows the manifest's figures."""

from __future__ import annotations

from typing import Any

from model.card import _targets


def _manifest(test: float, base: float, mcnemar_p: float) -> dict[str, Any]:
    paired = {"difference": test - base, "ci95": [-0.007, 0.011], "mcnemar_p": mcnemar_p}
    return {
        "metrics": {"test": {"accuracy": test}},
        "baseline": {"test_accuracy": base, "lstm_vs_baseline_on_test": paired},
    }


def test_a_win_inside_the_noise_says_so() -> None:
    text = _targets(_manifest(0.7905, 0.7867, 0.362))
    assert "**beats** it (0.7905 vs 0.7867; a difference inside the test split's noise" in text
    assert "McNemar p 0.36)." in text


def test_a_significant_win_carries_no_caveat() -> None:
    text = _targets(_manifest(0.80, 0.78, 0.01))
    assert "**beats** it (0.8000 vs 0.7800)." in text


def test_a_loss_is_called_one() -> None:
    assert "**does not beat** it" in _targets(_manifest(0.7862, 0.7867, 0.92))
    assert "Test accuracy >= 0.78: **met**" in _targets(_manifest(0.7862, 0.7867, 0.92))
