"""The smoke check: range, shape and the manifest's recorded sample probabilities."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from model import smoke


class Fixed:
    def __init__(self, values: Sequence[float]) -> None:
        self.values = values

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray(self.values[: len(texts)], dtype=np.float32)


def test_a_model_reproducing_its_recorded_samples_passes() -> None:
    scores = np.linspace(0.05, 0.95, len(smoke.SAMPLE_TEXTS))
    manifest = {smoke.MANIFEST_FIELD: smoke.record(Fixed(scores))}
    smoke.check(Fixed(scores + 1e-5), manifest)


def test_other_probabilities_than_recorded_fail() -> None:
    scores = np.linspace(0.05, 0.95, len(smoke.SAMPLE_TEXTS))
    manifest = {smoke.MANIFEST_FIELD: smoke.record(Fixed(scores))}
    with pytest.raises(smoke.SmokeCheckError, match="differ from the manifest"):
        smoke.check(Fixed(scores[::-1]), manifest)


@pytest.mark.parametrize(
    ("values", "message"),
    [([0.5] * 3, "probabilities for"), ([1.5] * 6, r"outside \[0, 1\]"), ([np.nan] * 6, "outside")],
)
def test_wrong_shape_or_range_fails_without_recorded_samples(
    values: list[float], message: str
) -> None:
    with pytest.raises(smoke.SmokeCheckError, match=message):
        smoke.check(Fixed(values), {})


def test_a_model_that_raises_fails_with_the_error() -> None:
    class Broken:
        def predict(self, texts: Sequence[str]) -> np.ndarray:
            raise RuntimeError("graph is broken")

    with pytest.raises(smoke.SmokeCheckError, match="graph is broken"):
        smoke.check(Broken(), {})
