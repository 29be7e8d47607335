"""Knowledge distillation: soft targets from a TF-IDF + LR teacher, cross-fitted on train.

The teacher's probability for a training message comes from a model that never
saw that message (k-fold out-of-fold predictions), so the soft targets carry the
teacher's view of *unseen* text, not its memory of the train set. Only train is
used: val stays for early stopping, test for reporting.
"""

from __future__ import annotations

from typing import Any

import numpy as np

TEACHERS = ("none", "tfidf-oof", "tfidf-char-oof", "lstm+tfidf-oof", "lstm+tfidf-char-oof")


def teacher_parts(teacher: str) -> tuple[bool, str | None]:
    """(uses out-of-fold LSTMs, TF-IDF teacher name or None) of a teacher name.

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


def _features(chars: bool) -> Any:
    """The baseline's TF-IDF word 1-2 grams (`model.baseline`); with `chars`, plus
    character 2-5 grams within words (catches spelling variants, emoji, `$tickers`)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import FeatureUnion

    from model.baseline import word_vectorizer

    words = word_vectorizer()
    if not chars:
        return words
    grams = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=3, sublinear_tf=True)
    return FeatureUnion([("words", words), ("chars", grams)])


def out_of_fold_tfidf(
    texts: list[str],
    labels: np.ndarray,
    folds: int,
    c: float,
    seed: int,
    chars: bool = False,
) -> np.ndarray:
    """P(bullish) for each text from TF-IDF + LR fitted on the other folds."""
    from sklearn.linear_model import LogisticRegression

    labels = np.asarray(labels)
    assignment = fold_assignment(len(texts), folds, seed)
    out = np.zeros(len(texts), dtype=np.float32)
    for fold in range(folds):
        held = np.flatnonzero(assignment == fold)
        kept = np.flatnonzero(assignment != fold)
        vectorizer = _features(chars)
        x_kept = vectorizer.fit_transform([texts[i] for i in kept])
        clf = LogisticRegression(C=c, max_iter=3000)
        clf.fit(x_kept, labels[kept])
        out[held] = clf.predict_proba(vectorizer.transform([texts[i] for i in held]))[:, 1]
    return out


def teacher_probabilities(
    teacher: str, texts: list[str], labels: np.ndarray, folds: int, c: float, seed: int
) -> np.ndarray | None:
    """The named teacher's out-of-fold probabilities on train, or None for `none`."""
    if teacher == "none":
        return None
    if teacher in ("tfidf-oof", "tfidf-char-oof"):
        return out_of_fold_tfidf(texts, labels, folds, c, seed, chars=teacher == "tfidf-char-oof")
    raise ValueError(f"unknown teacher {teacher!r}; expected one of {TEACHERS}")


_FEATURES = {
    "tfidf-oof": "word 1-2 grams",
    "tfidf-char-oof": "word 1-2 grams and character 2-5 grams",
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
        f"tag + {weight:g} x {what}a TF-IDF ({_FEATURES[teacher]}) + "
        f"logistic-regression teacher (C {training.get('teacher_c')}), computed "
        f"out-of-fold ({folds} folds of train, so a teacher never scored a message "
        "it was fitted on). The teachers' graded confidence "
        "regularises the LSTM, which otherwise fits train's hard tags within a few "
        "epochs; val and test are untouched, early stopping still watches val "
        "accuracy against the real tags, and the teacher is not part of the artifact.\n"
    )
