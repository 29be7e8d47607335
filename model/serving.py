"""The exported graph: raw message strings in, probability of bullish out."""

from __future__ import annotations

from collections.abc import Sequence

import keras
import tensorflow as tf

from model.text import tokenize_batch
from model.vocab import PAD_INDEX, TokenEncoder

# Each batch is padded to its longest message, rounded up to a multiple of
# this: few distinct shapes, so XLA compiles a handful of programs, not one a length.
PAD_MULTIPLE = 8
SIGNATURE_NAME = "serving_default"
OUTPUT_KEY = "probability"


def pad_ids(ids: tf.RaggedTensor) -> tf.Tensor:
    """Ragged ids -> dense (batch, steps), right-padded with `PAD_INDEX` to the
    batch's longest row rounded up to `PAD_MULTIPLE` (at least one multiple)."""
    dense = ids.to_tensor(default_value=PAD_INDEX)
    steps = tf.shape(dense)[1]
    target = tf.maximum((steps + PAD_MULTIPLE - 1) // PAD_MULTIPLE * PAD_MULTIPLE, PAD_MULTIPLE)
    return tf.pad(dense, [[0, 0], [0, target - steps]], constant_values=PAD_INDEX)


class SentimentModule(tf.Module):
    """Normalise -> tokenize -> encode -> pad -> network, as one SavedModel."""

    def __init__(self, network: keras.Model, vocabulary: Sequence[str], jit_compile: bool) -> None:
        super().__init__(name="stocktwits_sentiment")
        self.network = network
        # Keras 3 variables (seed-generator states included) are tracked
        # explicitly, as keras.export.ExportArchive does.
        self.network_variables = list(network.variables)
        self.encoder = TokenEncoder(vocabulary)
        # String ops cannot be XLA-compiled: only the numeric part is.
        self._score = tf.function(
            self._score_ids,
            input_signature=[tf.TensorSpec([None, None], tf.int32)],
            jit_compile=jit_compile,
            reduce_retracing=True,
        )

    def _score_ids(self, ids: tf.Tensor) -> tf.Tensor:
        return tf.reshape(self.network(ids, training=False), [-1])

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="messages")])
    def serve(self, messages: tf.Tensor) -> dict[str, tf.Tensor]:
        """Raw messages (tf.string, [batch]) -> {"probability": float32 [batch]}."""
        ids = pad_ids(self.encoder.encode(tokenize_batch(messages)))
        return {OUTPUT_KEY: self._score(ids)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def encode(self, messages: tf.Tensor) -> tf.Tensor:
        """Raw messages -> padded int32 ids (what the network sees)."""
        return pad_ids(self.encoder.encode(tokenize_batch(messages)))


def save_serving_model(module: SentimentModule, directory: str) -> None:
    """Write `module` as a SavedModel with the `serving_default` signature."""
    tf.saved_model.save(
        module,
        directory,
        signatures={SIGNATURE_NAME: module.serve.get_concrete_function()},
    )
