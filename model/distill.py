"""Knowledge distillation: soft targets from a linear n-gram teacher, cross-fitted on train.

The teacher's probability for a training message comes from a model that never
saw that message (k-fold out-of-fold predictions), so the soft targets carry the
teacher's view of *unseen* text, not its memory of the train set. Only train is
used: val stays for early stopping, test for reporting.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# Linear n-gram teachers: TF-IDF + LR (the baseline's word features, or words + characters)
# and NB-SVM (naive-Bayes-weighted binary word and character n-grams + LR).
LINEAR_TEACHERS = ("tfidf-oof", "tfidf-char-oof", "nbsvm-oof")
TEACHERS = ("none", *LINEAR_TEACHERS, *(f"lstm+{t}" for t in LINEAR_TEACHERS))


def teacher_parts(teacher: str) -> tuple[bool, str | None]:
    """(uses out-of-fold LSTMs, linear teacher name or None) of a teacher name.

    `lstm+X` averages the probabilities of out-of-fold LSTMs (the student's own
    network and training settings, without distillation) and of teacher X.
    """
    if teacher not in TEACHERS:
        raise ValueError(f"unknown teacher {teacher!r}; expected one of {TEACHERS}")
    if teacher == "none":
        return False, None
    lstm = teacher.startswith("lstm+")
    return lstm, teacher.removeprefix("lstm+")


def fold_assignment(n: int, folds: int, seed: int) -> np.ndarray:
    """Fold index (0..folds-1) of each of n rows: a seeded permutation, sizes within 1."""
    if folds < 2:
        raise ValueError(f"need at least 2 folds, got {folds}")
    if n < folds:
        raise ValueError(f"{n} rows cannot fill {folds} folds")
    order = np.random.default_rng(seed).permutation(n)
    out = np.empty(n, dtype=np.int64)
    out[order] = np.arange(n) % folds
    return out


def blend_targets(labels: np.ndarray, teacher: np.ndarray, weight: float) -> np.ndarray:
    """Training targets: (1 - weight) * hard label + weight * teacher probability."""
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"soft-target weight must be in [0, 1], got {weight}")
    labels = np.asarray(labels, dtype=np.float32)
    teacher = np.asarray(teacher, dtype=np.float32)
    if labels.shape != teacher.shape:
        raise ValueError(f"labels {labels.shape} and teacher {teacher.shape} differ in shape")
    if teacher.size and (teacher.min() < 0.0 or teacher.max() > 1.0):
        raise ValueError("teacher probabilities must lie in [0, 1]")
    return ((1.0 - weight) * labels + weight * teacher).astype(np.float32)


def _features(teacher: str) -> tuple[Any, bool]:
    """The named linear teacher's n-gram features (unfitted), and whether they are weighted
    by `nb_log_count_ratio` before the logistic regression.

    `tfidf-oof`: the baseline's TF-IDF word 1-2 grams (`model.baseline`);
    `tfidf-char-oof`: plus TF-IDF character 2-5 grams within words (catches spelling
    variants, emoji, `$tickers`); `nbsvm-oof`: binary word 1-3 grams and character 1-5
    grams within words, naive-Bayes weighted.
    """
    from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
    from sklearn.pipeline import FeatureUnion

    from model.baseline import word_vectorizer

    if teacher == "tfidf-oof":
        return word_vectorizer(), False
    if teacher == "tfidf-char-oof":
        grams = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=3, sublinear_tf=True)
        return FeatureUnion([("words", word_vectorizer()), ("chars", grams)]), False
    if teacher == "nbsvm-oof":
        words = CountVectorizer(ngram_range=(1, 3), min_df=2, binary=True)
        chars = CountVectorizer(analyzer="char_wb", ngram_range=(1, 5), min_df=3, binary=True)
        return FeatureUnion([("words", words), ("chars", chars)]), True
    raise ValueError(f"unknown linear teacher {teacher!r}; expected one of {LINEAR_TEACHERS}")


def nb_log_count_ratio(x: Any, labels: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """Per-feature log ratio of the feature's smoothed share among bullish rows to its
    share among bearish rows (Wang & Manning 2012, "Baselines and Bigrams": NB-SVM).
    Scaling binary features by it lets a linear model start from naive Bayes' evidence."""
    labels = np.asarray(labels)
    if not np.any(labels == 1) or not np.any(labels == 0):
        raise ValueError("naive-Bayes weights need both bullish and bearish rows")
    bullish = alpha + np.asarray(x[labels == 1].sum(axis=0)).ravel()
    bearish = alpha + np.asarray(x[labels == 0].sum(axis=0)).ravel()
    return np.log(bullish / bullish.sum()) - np.log(bearish / bearish.sum())


def fit_predict_linear(
    teacher: str, fit_texts: list[str], fit_labels: np.ndarray, texts: list[str], c: float
) -> np.ndarray:
    """P(bullish) of `texts` from the named linear teacher fitted on the fit rows."""
    from scipy import sparse
    from sklearn.linear_model import LogisticRegression

    vectorizer, naive_bayes_weighted = _features(teacher)
    x_fit = vectorizer.fit_transform(fit_texts)
    x = vectorizer.transform(texts)
    if naive_bayes_weighted:
        weights = sparse.diags(nb_log_count_ratio(x_fit, fit_labels))
        x_fit, x = x_fit @ weights, x @ weights
    clf = LogisticRegression(C=c, max_iter=3000)
    clf.fit(x_fit, fit_labels)
    return np.asarray(clf.predict_proba(x)[:, 1], dtype=np.float32)


def out_of_fold_linear(
    teacher: str,
    texts: list[str],
    labels: np.ndarray,
    folds: int,
    c: float,
    seed: int,
) -> np.ndarray:
    """P(bullish) for each text from the linear teacher fitted on the other folds."""
    labels = np.asarray(labels)
    assignment = fold_assignment(len(texts), folds, seed)
    out = np.zeros(len(texts), dtype=np.float32)
    for fold in range(folds):
        held = np.flatnonzero(assignment == fold)
        kept = np.flatnonzero(assignment != fold)
        out[held] = fit_predict_linear(
            teacher, [texts[i] for i in kept], labels[kept], [texts[i] for i in held], c
        )
    return out


def teacher_probabilities(
    teacher: str, texts: list[str], labels: np.ndarray, folds: int, c: float, seed: int
) -> np.ndarray | None:
    """The named teacher's out-of-fold probabilities on train, or None for `none`."""
    if teacher == "none":
        return None
    if teacher in LINEAR_TEACHERS:
        return out_of_fold_linear(teacher, texts, labels, folds, c, seed)
    raise ValueError(f"unknown teacher {teacher!r}; expected one of {TEACHERS}")


_FEATURES = {
    "tfidf-oof": "a TF-IDF (word 1-2 grams) + logistic-regression teacher",
    "tfidf-char-oof": "a TF-IDF (word 1-2 grams and character 2-5 grams) + "
    "logistic-regression teacher",
    "nbsvm-oof": "an NB-SVM teacher (binary word 1-3 grams and character 1-5 grams "
    "weighted by naive-Bayes log-count ratios, + logistic regression)",
}
_FEATURES.update({f"lstm+{k}": v for k, v in _FEATURES.items()})


def describe(training: dict[str, Any]) -> str:
    """One sentence for the model card about the training targets."""
    teacher = training.get("distill_from", "none")
    weight = training.get("soft_target_weight", 0.0)
    if teacher == "none" or not weight:
        return ""
    folds = training.get("distill_folds")
    lstm, _ = teacher_parts(teacher)
    what = (
        "the mean of two teachers' probabilities: LSTMs of this very network and "
        "training recipe (one per fold, without distillation, early-stopped on val) and "
        if lstm
        else "the probability of "
    )
    return (
        f"- **Distillation**: the training targets are {1 - weight:g} x the author's "
        f"tag + {weight:g} x {what}{_FEATURES[teacher]} (C {training.get('teacher_c')}), computed "
        f"out-of-fold ({folds} folds of train, so a teacher never scored a message "
        "it was fitted on). The teachers' graded confidence "
        "regularises the LSTM, which otherwise fits train's hard tags within a few "
        "epochs; val and test are untouched, early stopping still watches val "
        "accuracy against the real tags, and the teacher is not part of the artifact.\n"
    )
