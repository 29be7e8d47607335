"""Subwords: a token's character n-grams, their ids, and the network and serving
graph that use them (training and serving agree; words outside the vocabulary
get distinct vectors)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.test_model_export import export_tiny, keras_inputs, synthetic_messages

# model.text, .network, .serving ... import TensorFlow: imported inside the tests, so that
# collecting this module (make test-unit deselects it) does not load it
pytestmark = pytest.mark.tensorflow


def grams(token: str) -> list[str]:
    import tensorflow as tf

    from model.subwords import subword_strings

    return [bytes(g).decode() for g in subword_strings(tf.constant([token])).to_list()[0]]


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        ("!", ["<!>"]),
        ("up", ["<up", "up>", "<up>"]),
        (
            "bull",
            ["<bu", "bul", "ull", "ll>", "<bul", "bull", "ull>", "<bull", "bull>"],
        ),
        ("é🚀", ["<é🚀", "é🚀>", "<é🚀>"]),
        (
            "_pct_",
            [
                "<_p",
                "_pc",
                "pct",
                "ct_",
                "t_>",
                "<_pc",
                "_pct",
                "pct_",
                "ct_>",
                "<_pct",
                "_pct_",
                "pct_>",
            ],
        ),
    ],
)
def test_subword_strings(token: str, expected: list[str]) -> None:
    # Widths in order (all 3-grams, then 4-grams, then 5-grams), as fastText.
    assert sorted(grams(token)) == sorted(expected)
    assert grams(token)[0] == expected[0]


def test_long_words_are_cut_to_bound_the_ngrams() -> None:
    from model.subwords import MAX_WORD_CHARS

    long = "a" * 200
    cut = "a" * MAX_WORD_CHARS
    assert grams(long) == grams(cut)
    marked = MAX_WORD_CHARS + 2
    assert len(grams(long)) == sum(marked - n + 1 for n in (3, 4, 5)) == 45


def test_subword_ids_are_stable_hashes_in_range() -> None:
    import tensorflow as tf

    from model.subwords import subword_ids

    tokens = tf.constant(["bull", "bear", "bullish", "🚀", "x" * 50])
    ids = subword_ids(tokens, 97)
    flat = ids.flat_values.numpy()
    assert flat.dtype == np.int32
    assert flat.min() >= 1 and flat.max() <= 97
    np.testing.assert_array_equal(flat, subword_ids(tokens, 97).flat_values.numpy())
    # Shared n-grams share ids: "bull" and "bullish" both start with "<bu".
    assert ids[0][0].numpy() == ids[2][0].numpy()
    assert all(len(row) >= 1 for row in ids.to_list())


def test_subword_ids_reject_no_buckets() -> None:
    import tensorflow as tf

    from model.subwords import subword_ids

    with pytest.raises(ValueError, match="buckets"):
        subword_ids(tf.constant(["x"]), 0)


def test_padded_subwords_line_up_with_padded_ids() -> None:
    import tensorflow as tf

    from model.serving import pad_ids
    from model.subwords import nested_subword_ids, pad_subwords
    from model.text import tokenize_batch
    from model.vocab import TokenEncoder

    tokens = tokenize_batch(tf.constant(["$SPY to the moon 🚀", "", "puts"]))
    ids = pad_ids(TokenEncoder(["", "[OOV]", "_ticker_"]).encode(tokens))
    dense = pad_subwords(nested_subword_ids(tokens, 31), tf.shape(ids)[1])
    assert dense.shape[:2] == ids.shape
    present = (dense.numpy() > 0).any(axis=2)
    np.testing.assert_array_equal(present, ids.numpy() != 0)


def test_dataset_feeds_both_inputs() -> None:
    import tensorflow as tf

    from model.network import SUBWORD_IDS, TOKEN_IDS
    from model.text import tokenize_batch
    from model.training import make_dataset, network_inputs
    from model.vocab import TokenEncoder

    texts = ["moon calls 🚀", "", "crash puts puts puts puts puts puts puts puts"]
    tokens = tokenize_batch(tf.constant(texts))
    encoder = TokenEncoder(["", "[OOV]", "_ticker_", "moon", "puts"])
    ids, nested = network_inputs(encoder, tokens, 53)
    assert nested is not None
    ds = make_dataset(ids, np.array([1, 0, 0]), 8, None, subwords=nested)
    inputs, labels = next(iter(ds))
    assert set(inputs) == {TOKEN_IDS, SUBWORD_IDS}
    assert inputs[SUBWORD_IDS].shape[:2] == inputs[TOKEN_IDS].shape
    assert labels.shape == (3,)
    assert network_inputs(encoder, tokens, 0)[1] is None


def test_old_manifests_mean_no_subwords() -> None:
    from model.network import NetworkConfig

    config = NetworkConfig.from_dict({"embedding_dim": 8, "lstm_units": [8, 4]})
    assert config.subword_buckets == 0


@pytest.fixture(scope="module")
def subword_export(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, list[str], Path]:
    return export_tiny(tmp_path_factory.mktemp("subwords") / "model", "last", subword_buckets=64)


UNSEEN = [
    "mooon calls",  # not in the vocabulary: OOV id, own n-grams
    "$ZZZZ calls",  # an unseen ticker: the `_ticker_` id, own n-grams
    "_ticker_ calls",  # the ticker token typed literally
    "moon calls",
    "",
]


def test_keras_and_savedmodel_agree_with_subwords(
    subword_export: tuple[object, list[str], Path],
) -> None:
    import tensorflow as tf

    from model.serving import OUTPUT_KEY, SIGNATURE_NAME

    network, vocabulary, directory = subword_export
    texts = synthetic_messages(300, seed=3)[0] + UNSEEN
    expected = np.asarray(
        network(keras_inputs(texts, vocabulary, 64), training=False)  # type: ignore[operator]
    ).reshape(-1)
    loaded = tf.saved_model.load(str(directory))
    got = loaded.signatures[SIGNATURE_NAME](messages=tf.constant(texts))[OUTPUT_KEY].numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_words_outside_the_vocabulary_are_told_apart(
    subword_export: tuple[object, list[str], Path],
) -> None:
    import tensorflow as tf

    from model.serving import OUTPUT_KEY, SIGNATURE_NAME

    _, vocabulary, directory = subword_export
    assert "mooon" not in vocabulary and "zebra" not in vocabulary
    serve = tf.saved_model.load(str(directory)).signatures[SIGNATURE_NAME]
    out = serve(messages=tf.constant(["mooon", "zebra", "$AAAA", "$BBBB"]))[OUTPUT_KEY].numpy()
    assert out[0] != out[1]  # both OOV: without subwords they would score the same
    assert out[2] != out[3]  # both unseen tickers


def test_subwords_cannot_be_xla_compiled(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="subwords"):
        export_tiny(tmp_path / "model", "last", subword_buckets=8, jit_compile=True)
