"""Classification metrics with bullish as the positive class (NumPy only)."""

from __future__ import annotations

from typing import Any

import numpy as np

BULLISH_THRESHOLD = 0.5


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U, ties averaged); NaN for one class."""
    labels = np.asarray(labels).astype(bool)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = np.asarray(scores)[order]
    ranks = np.empty(len(scores), dtype=np.float64)
    # Average ranks over ties.
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    for start, count in zip(first, counts, strict=True):
        ranks[order[start : start + count]] = start + (count + 1) / 2.0
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def correct(labels: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    """True where the label the decision rule gives (`>= BULLISH_THRESHOLD` is bullish)
    matches the author's tag (1 = bullish)."""
    return (np.asarray(probabilities) >= BULLISH_THRESHOLD) == (np.asarray(labels) == 1)


def classification_report(
    labels: np.ndarray, probabilities: np.ndarray, threshold: float = BULLISH_THRESHOLD
) -> dict[str, Any]:
    """accuracy, precision, recall, f1, roc_auc, log_loss, confusion_matrix, n.

    confusion_matrix is [[true bearish, bearish called bullish],
    [bullish called bearish, true bullish]] (rows: truth, columns: prediction).
    """
    labels = np.asarray(labels).astype(np.int64)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if labels.shape != probabilities.shape:
        raise ValueError(f"labels {labels.shape} and probabilities {probabilities.shape} differ")
    predicted = (probabilities >= threshold).astype(np.int64)
    tp = int(((predicted == 1) & (labels == 1)).sum())
    tn = int(((predicted == 0) & (labels == 0)).sum())
    fp = int(((predicted == 1) & (labels == 0)).sum())
    fn = int(((predicted == 0) & (labels == 1)).sum())
    n = len(labels)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    clipped = np.clip(probabilities, 1e-7, 1 - 1e-7)
    log_loss = (
        float(-np.mean(labels * np.log(clipped) + (1 - labels) * np.log(1 - clipped)))
        if n
        else float("nan")
    )
    return {
        "n": n,
        "accuracy": round((tp + tn) / n, 6) if n else float("nan"),
        "precision": round(precision, 6),
        "recall": round(recall, 6),
        "f1": round(f1, 6),
        "roc_auc": round(roc_auc(labels, probabilities), 6),
        "log_loss": round(log_loss, 6),
        "confusion_matrix": [[tn, fp], [fn, tp]],
        "threshold": threshold,
    }


def paired_comparison(
    a_correct: np.ndarray, b_correct: np.ndarray, resamples: int = 2000, seed: int = 0
) -> dict[str, Any]:
    """Two classifiers scored on the same messages (True where each is right).

    `difference` is accuracy a minus b; `ci95` its 95% paired bootstrap interval;
    `only_a_right` / `only_b_right` count the messages where exactly one is right, and
    `mcnemar_p` is the exact two-sided McNemar test on them (how likely a split at
    least this uneven is when both classifiers are equally good).
    """
    import math

    a = np.asarray(a_correct, dtype=bool)
    b = np.asarray(b_correct, dtype=bool)
    if a.shape != b.shape or a.ndim != 1 or len(a) == 0:
        raise ValueError(f"need two equal, non-empty 1-D arrays, got {a.shape} and {b.shape}")
    only_a, only_b = int(np.sum(a & ~b)), int(np.sum(~a & b))
    discordant = only_a + only_b
    tail = sum(math.comb(discordant, i) for i in range(min(only_a, only_b) + 1))
    p_value = min(1.0, 2 * tail / 2**discordant)
    rows = np.random.default_rng(seed).integers(0, len(a), size=(resamples, len(a)))
    diffs = a[rows].mean(axis=1) - b[rows].mean(axis=1)
    low, high = np.percentile(diffs, [2.5, 97.5])
    return {
        "difference": round(float(a.mean() - b.mean()), 4),
        "ci95": [round(float(low), 4), round(float(high), 4)],
        "only_a_right": only_a,
        "only_b_right": only_b,
        "mcnemar_p": round(p_value, 3),
    }


def balanced_accuracy(
    labels: np.ndarray, probabilities: np.ndarray, threshold: float = BULLISH_THRESHOLD
) -> float:
    """Mean of bullish recall and bearish recall: what accuracy would be on balanced tags
    (authors' tags are skewed, up to 84% bullish); NaN when one side is absent."""
    labels = np.asarray(labels).astype(bool)
    predicted = np.asarray(probabilities) >= threshold
    if labels.all() or not labels.any():
        return float("nan")
    bullish_recall = float(np.mean(predicted[labels]))
    bearish_recall = float(np.mean(~predicted[~labels]))
    return (bullish_recall + bearish_recall) / 2.0
