"""Export round trip on a tiny model: Keras and the loaded SavedModel agree; the
signature takes raw strings; the Predictor survives any input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from model import BULLISH_THRESHOLD, Predictor, label_for

# model.text, .network, .serving ... import TensorFlow: imported inside the tests, so that
# collecting this module (make test-unit deselects it) does not load it
pytestmark = pytest.mark.tensorflow

WORDS = [
    "$SPY",
    "$VIX",
    "moon",
    "crash",
    "calls",
    "puts",
    "🚀",
    "bear",
    "bull",
    "!!",
    "?",
    "@trader",
    "250.5",
    "3%",
    "$251",
    "https://t.co/x",
    "&amp;",
    "don't",
    "short",
    "long",
]


def synthetic_messages(n: int, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """Reproducible messages of 0-30 words; 'bullish' when more bull words than bear."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for _ in range(n):
        words = list(rng.choice(WORDS, size=int(rng.integers(0, 30))))
        texts.append(" ".join(words))
        bull = sum(w in ("moon", "calls", "🚀", "bull", "long") for w in words)
        labels.append(int(bull * 2 >= len(words) * 0.5))
    return texts, np.asarray(labels, dtype=np.float32)


def keras_inputs(texts: list[str], vocabulary: list[str], subword_buckets: int = 0) -> object:
    """What the Keras network takes for `texts`: padded ids, or with subwords the dict."""
    from model.training import keras_inputs
    from model.vocab import TokenEncoder

    return keras_inputs(TokenEncoder(vocabulary), texts, subword_buckets)


def export_tiny(
    directory: Path, pooling: str, subword_buckets: int = 0, jit_compile: bool = False
) -> tuple[object, list[str], Path]:
    """A 1-step-trained tiny network on 300 synthetic rows, exported to `directory`."""
    import keras

    from model.export import export_savedmodel, write_manifest
    from model.network import NetworkConfig, build_network
    from model.text import tokenize
    from model.vocab import build_vocabulary

    keras.utils.set_random_seed(7)
    texts, labels = synthetic_messages(300)
    vocabulary = build_vocabulary(tokenize(texts), min_count=1)
    config = NetworkConfig(
        embedding_dim=8,
        lstm_units=(8, 4),
        pooling=pooling,
        subword_buckets=subword_buckets,
        subword_dim=4,
    )
    network = build_network(len(vocabulary), config)
    network.compile(optimizer="adam", loss="binary_crossentropy")
    inputs = keras_inputs(texts, vocabulary, subword_buckets)
    network.fit(inputs, labels, batch_size=300, epochs=1, verbose=0)
    export_savedmodel(network, vocabulary, directory, jit_compile=jit_compile, pooling=pooling)
    write_manifest(directory, {"vocabulary_size": len(vocabulary)})
    return network, vocabulary, directory


@pytest.fixture(scope="module")
def tiny_export(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, list[str], Path]:
    """The tiny model with last+max pooling, shared by most tests here."""
    return export_tiny(tmp_path_factory.mktemp("tiny") / "model", "last+max")


def test_keras_and_savedmodel_agree(tiny_export: tuple[object, list[str], Path]) -> None:
    assert_keras_matches_savedmodel(*tiny_export)


def test_keras_and_savedmodel_agree_last_pooling(tmp_path: Path) -> None:
    assert_keras_matches_savedmodel(*export_tiny(tmp_path / "model", "last"))


def assert_keras_matches_savedmodel(
    network: object, vocabulary: list[str], directory: Path
) -> None:
    """Keras (masked, dropout off) and the exported inference graph agree on 400 messages."""
    import tensorflow as tf

    from model.serving import OUTPUT_KEY, SIGNATURE_NAME

    texts, _ = synthetic_messages(400, seed=1)
    ids = keras_inputs(texts, vocabulary)
    expected = np.asarray(network(ids, training=False)).reshape(-1)  # type: ignore[operator]
    loaded = tf.saved_model.load(str(directory))
    got = loaded.signatures[SIGNATURE_NAME](messages=tf.constant(texts))[OUTPUT_KEY].numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5)
    # The batch padded to the next power of two (XLA path) scores the same rows.
    assert got.shape == (400,)


def test_signature_takes_raw_strings(tiny_export: tuple[object, list[str], Path]) -> None:
    import tensorflow as tf

    from model.serving import OUTPUT_KEY, SIGNATURE_NAME

    _, _, directory = tiny_export
    signature = tf.saved_model.load(str(directory)).signatures[SIGNATURE_NAME]
    (spec,) = signature.structured_input_signature[1].values()
    assert spec.dtype == tf.string
    assert spec.shape.as_list() == [None]
    out = signature(messages=tf.constant(["$SPY &amp; moon 🚀", ""]))[OUTPUT_KEY]
    assert out.dtype == tf.float32
    assert out.shape == (2,)
    empty = signature(messages=tf.constant([], dtype=tf.string))[OUTPUT_KEY]
    assert empty.shape == (0,)


def test_predictor_contract(tiny_export: tuple[object, list[str], Path]) -> None:
    from model.export import content_hash

    _, _, directory = tiny_export
    predictor = Predictor.load(directory)
    manifest = json.loads((directory / "manifest.json").read_text())
    assert predictor.version == manifest["model_version"] == content_hash(directory)[:16]
    assert predictor.manifest == manifest
    assert predictor.path == directory
    empty = predictor.predict([])
    assert empty.shape == (0,)
    assert empty.dtype == np.float32
    out = predictor.predict(["$SPY calls 🚀", "puts"])
    assert out.shape == (2,)
    assert out.dtype == np.float32


def test_per_batch_padding_does_not_change_a_message(
    tiny_export: tuple[object, list[str], Path],
) -> None:
    _, _, directory = tiny_export
    predictor = Predictor.load(directory, warmup=False)
    short = "moon 🚀"
    alone = predictor.predict([short])[0]
    with_long = predictor.predict([short, " ".join(["bull calls"] * 20)])[0]
    assert abs(alone - with_long) < 1e-5


def test_big_batches_score_like_single_messages(
    tiny_export: tuple[object, list[str], Path],
) -> None:
    """Length-sorted chunking and scattering back keep every row in its place."""
    _, _, directory = tiny_export
    predictor = Predictor.load(directory, warmup=False)
    texts, _ = synthetic_messages(600, seed=3)
    batch = predictor.predict(texts)
    one_by_one = np.concatenate([predictor.predict([t]) for t in texts])
    np.testing.assert_allclose(batch, one_by_one, atol=1e-5)


BAD_INPUTS = {
    "empty": "",
    "whitespace": " \n\t ",
    "punctuation only": "?!.,;:-_()[]{}'\"",
    "100 KB": "$SPY to the moon 🚀 " * 5000,
    "lone surrogates": "bull \ud800\udfff \udc00 run",
    "emoji only": "🚀🐻🐂💎🙌",
    "control chars": "\x00\x01\x7f",
    "html only": "&amp;&lt;&gt;&#39;",
}


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_bad_input_gets_a_probability(
    tiny_export: tuple[object, list[str], Path], name: str
) -> None:
    _, _, directory = tiny_export
    predictor = Predictor.load(directory, warmup=False)
    (p,) = predictor.predict([BAD_INPUTS[name]])
    assert 0.0 <= p <= 1.0


def test_to_utf8_keeps_surrogates_as_bytes() -> None:
    from model.text import to_utf8

    assert to_utf8("a\ud800") == b"a\xed\xa0\x80"
    assert to_utf8(b"raw") == b"raw"


def test_label_for_threshold() -> None:
    assert BULLISH_THRESHOLD == 0.5
    assert label_for(0.5) == "bullish"
    assert label_for(0.4999) == "bearish"
    assert label_for(1.0) == "bullish"
    assert label_for(0.0) == "bearish"


def test_load_names_a_directory_without_a_model(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        Predictor.load(tmp_path)
