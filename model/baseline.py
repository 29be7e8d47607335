"""The TF-IDF + logistic-regression baseline the LSTM has to beat."""

from __future__ import annotations

from typing import Any

import numpy as np

from model.data import LabeledMessages

# Regularisation strengths tried; the best on val is kept (never chosen on test).
C_GRID = (0.5, 1.0, 2.0, 4.0, 8.0)


def word_vectorizer() -> Any:
    """The baseline's features: TF-IDF of word 1-2 grams (min_df 2, sublinear tf) on the
    raw lower-cased text. The distillation teachers (`model.distill`) start from it too."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)


def tfidf_baseline(
    train: LabeledMessages, val: LabeledMessages, test: LabeledMessages
) -> tuple[dict[str, Any], np.ndarray]:
    """Fit TF-IDF (word 1-2 grams, raw lower-cased text) + logistic regression.

    C is chosen on val; returns the val and test accuracy of that choice, and its
    test predictions (1 = bullish) for a paired comparison.
    """
    from sklearn.linear_model import LogisticRegression

    vectorizer = word_vectorizer()
    x_train = vectorizer.fit_transform(train.texts)
    x_val = vectorizer.transform(val.texts)
    x_test = vectorizer.transform(test.texts)
    best: tuple[float, float, np.ndarray] | None = None
    for c in C_GRID:
        clf = LogisticRegression(C=c, max_iter=2000)
        clf.fit(x_train, train.labels)
        val_acc = float(np.mean(clf.predict(x_val) == val.labels))
        if best is None or val_acc > best[1]:
            best = (c, val_acc, clf.predict(x_test))
    assert best is not None
    summary = {
        "model": "TF-IDF word 1-2 grams (min_df 2, sublinear tf) + logistic regression",
        "C": best[0],
        "val_accuracy": round(best[1], 4),
        "test_accuracy": round(float(np.mean(best[2] == test.labels)), 4),
    }
    return summary, best[2]
