"""The exported graph: raw message strings in, probability of bullish out."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import keras
import tensorflow as tf

from model.subwords import subword_ids
from model.text import tokenize_batch
from model.vocab import PAD_INDEX, RESERVED, TokenEncoder

# Each batch is padded to its longest message, rounded up to a multiple of
# this: few distinct shapes, so XLA compiles a handful of programs, not one a length.
PAD_MULTIPLE = 8
# Big batches are scored in length-sorted chunks of this many rows.
CHUNK_ROWS = 256
SIGNATURE_NAME = "serving_default"
OUTPUT_KEY = "probability"


def pad_ids(ids: tf.RaggedTensor) -> tf.Tensor:
    """Ragged ids -> dense (batch, steps), right-padded with `PAD_INDEX` to the
    batch's longest row rounded up to `PAD_MULTIPLE` (at least one multiple)."""
    dense = ids.to_tensor(default_value=PAD_INDEX)
    steps = tf.shape(dense)[1]
    target = tf.maximum((steps + PAD_MULTIPLE - 1) // PAD_MULTIPLE * PAD_MULTIPLE, PAD_MULTIPLE)
    return tf.pad(dense, [[0, 0], [0, target - steps]], constant_values=PAD_INDEX)


def pad_rows(ids: tf.Tensor) -> tf.Tensor:
    """Pad the batch dimension with all-padding rows up to the next power of two."""
    rows = tf.shape(ids)[0]
    target = tf.bitwise.left_shift(
        1,
        tf.cast(
            tf.math.ceil(tf.math.log(tf.cast(tf.maximum(rows, 1), tf.float32)) / tf.math.log(2.0)),
            tf.int32,
        ),
    )
    # Guard float rounding either way.
    target = tf.where(target // 2 >= rows, target // 2, tf.maximum(target, rows))
    return tf.pad(ids, [[0, target - rows], [0, 0]], constant_values=PAD_INDEX)


class InferenceNetwork(tf.Module):
    """The trained network's weights, run by a lean inference-only graph.

    Same maths as the Keras network (`model.network`) with dropout off, but:
    each LSTM's input projection is one matmul over all steps (only the
    recurrent matmul stays in the loop), and no per-step masking is needed —
    padding is on the right and LSTMs are causal, so the states over a
    message's real steps never see its padding; the top layer's output is read
    at each message's last real step (and the max runs over real steps only).
    """

    def __init__(
        self,
        network: keras.Model,
        pooling: str,
        vocabulary: Sequence[str],
        fallback_ids: Sequence[int],
    ) -> None:
        super().__init__(name="inference_network")
        if pooling not in ("last", "last+max"):
            raise ValueError(f"unknown pooling {pooling!r}")
        self.pooling = pooling

        def weight(value: object) -> tf.Variable:
            return tf.Variable(keras.ops.convert_to_numpy(value), trainable=False)

        self.embeddings = weight(network.get_layer("embedding").embeddings)
        self.subword_buckets = 0
        if any(layer.name == "subwords" for layer in network.layers):
            subwords = network.get_layer("subwords")
            self.subword_buckets = int(subwords.buckets)
            self.subword_embeddings = weight(subwords.embeddings)
            self.subword_projection = weight(subwords.projection)
            # A vocabulary word's vector never changes (its word vector plus its
            # n-grams'): computed once here, so serving derives n-grams only for the
            # tokens that get a fallback id (OOV, an unseen ticker), whose rows stay
            # plain word vectors (`token_vectors`).
            self.fallback_ids = tf.constant(sorted(set(fallback_ids)), dtype=tf.int32)
            words = [i for i in range(len(RESERVED), len(vocabulary)) if i not in fallback_ids]
            table = self.embeddings.numpy()
            table[words] += self.subword_vectors(
                tf.constant([vocabulary[i] for i in words], dtype=tf.string)
            ).numpy()
            self.embeddings = tf.Variable(table, trainable=False)
        self.lstm_kernels: list[tf.Variable] = []
        self.lstm_recurrent_kernels: list[tf.Variable] = []
        self.lstm_biases: list[tf.Variable] = []
        i = 1
        while any(layer.name == f"lstm_{i}" for layer in network.layers):
            cell = network.get_layer(f"lstm_{i}").cell
            self.lstm_kernels.append(weight(cell.kernel))
            self.lstm_recurrent_kernels.append(weight(cell.recurrent_kernel))
            self.lstm_biases.append(weight(cell.bias))
            i += 1
        head = network.get_layer("bullish")
        self.head_kernel = weight(head.kernel)
        self.head_bias = weight(head.bias)

    def subword_vectors(self, tokens: tf.Tensor) -> tf.Tensor:
        """Flat tokens (n,) -> the projected mean of each one's n-gram vectors (n, dim)."""
        return subword_vectors(
            tokens, self.subword_buckets, self.subword_embeddings, self.subword_projection
        )

    def token_vectors(self, tokens: tf.Tensor, ids: tf.Tensor) -> tf.Tensor:
        """Flat tokens and their ids -> input vectors (n, dim)."""
        vectors = tf.gather(self.embeddings, ids)
        if not self.subword_buckets:
            return vectors
        fallback = tf.reduce_any(ids[:, None] == self.fallback_ids[None, :], axis=1)
        rows = tf.where(fallback)[:, 0]
        extra = self.subword_vectors(tf.gather(tokens, rows))
        return tf.tensor_scatter_nd_add(vectors, rows[:, None], extra)

    def __call__(self, ids: tf.Tensor, table: tf.Tensor | None = None) -> tf.Tensor:
        """Padded ids (batch, steps) -> probability of bullish (batch,).

        The ids index `table` (default: the vocabulary's vectors); a network with
        subwords is given a table of the batch's own token vectors instead, since a
        token outside the vocabulary has a vector of its own (`SentimentModule.serve`).
        """
        lengths = tf.reduce_sum(tf.cast(ids != PAD_INDEX, tf.int32), axis=1)
        vectors = self.embeddings if table is None else table
        x = tf.gather(vectors, tf.transpose(ids))  # time-major (steps, batch, dim)
        for kernel, recurrent, bias in zip(
            self.lstm_kernels, self.lstm_recurrent_kernels, self.lstm_biases, strict=True
        ):
            x = _lstm_sequence(tf.einsum("tbd,dg->tbg", x, kernel) + bias, recurrent)
        has_tokens = (lengths > 0)[:, None]
        last_index = tf.stack([tf.maximum(lengths - 1, 0), tf.range(tf.shape(ids)[0])], axis=1)
        features = tf.where(has_tokens, tf.gather_nd(x, last_index), 0.0)
        if self.pooling == "last+max":
            real = tf.transpose(tf.sequence_mask(lengths, tf.shape(ids)[1]))[:, :, None]
            # Outputs lie in (-1, 1): -1 at padded steps never wins the max.
            maxed = tf.reduce_max(tf.where(real, x, -1.0), axis=0)
            features = tf.concat([maxed, features], axis=1)
        logits = tf.matmul(features, self.head_kernel) + self.head_bias
        return tf.sigmoid(tf.reshape(logits, [-1]))


def subword_vectors(
    tokens: tf.Tensor, buckets: int, embeddings: tf.Tensor, projection: tf.Tensor
) -> tf.Tensor:
    """Flat tokens (n,) -> the projected mean of each one's n-gram vectors (n, dim): what a
    token's subwords add to its word vector (serving, and the learner's rebuild, which takes
    it off again)."""
    grams = subword_ids(tokens, buckets)
    vectors = tf.gather(embeddings, grams.flat_values)
    mean = tf.math.unsorted_segment_mean(vectors, grams.value_rowids(), tf.shape(tokens)[0])
    return tf.matmul(mean, projection)


def _lstm_sequence(projected: tf.Tensor, recurrent: tf.Tensor) -> tf.Tensor:
    """Outputs (steps, batch, units) of an LSTM (Keras gate order i, f, c, o)
    given its input projection plus bias, time-major (steps, batch, 4 units)."""
    units = tf.shape(recurrent)[0]
    zeros = tf.zeros([tf.shape(projected)[1], units], dtype=projected.dtype)

    def step(state: tuple[tf.Tensor, tf.Tensor], z_input: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        h, c = state
        z = z_input + tf.matmul(h, recurrent)
        i, f, g, o = tf.split(z, 4, axis=1)
        c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
        h = tf.sigmoid(o) * tf.tanh(c)
        return h, c

    outputs, _ = tf.scan(step, projected, initializer=(zeros, zeros))
    return outputs


class SentimentModule(tf.Module):
    """Normalise -> tokenize -> encode -> pad -> network, as one SavedModel."""

    def __init__(
        self, network: keras.Model, vocabulary: Sequence[str], jit_compile: bool, pooling: str
    ) -> None:
        super().__init__(name="stocktwits_sentiment")
        self.encoder = TokenEncoder(vocabulary)
        self.network = InferenceNetwork(network, pooling, vocabulary, self.encoder.fallback_ids)
        if jit_compile and self.network.subword_buckets:
            raise ValueError("jit_compile does not support subwords (string ops cannot compile)")
        self.jit_compile = jit_compile
        # String ops cannot be XLA-compiled: only the numeric part is.
        self._score = tf.function(
            self.network.__call__,
            input_signature=[tf.TensorSpec([None, None], tf.int32)],
            jit_compile=jit_compile,
            reduce_retracing=True,
        )

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="messages")])
    def serve(self, messages: tf.Tensor) -> dict[str, tf.Tensor]:
        """Raw messages (tf.string, [batch]) -> {"probability": float32 [batch]}."""
        tokens = tokenize_batch(messages)
        token_ids = self.encoder.encode(tokens)
        ids = pad_ids(token_ids)
        if self.jit_compile:
            # XLA compiles one program per input shape: padding the batch to a
            # power of two bounds the programs at ~13 batch x 6 length buckets.
            return {OUTPUT_KEY: self._score(pad_rows(ids))[: tf.shape(messages)[0]]}
        if not self.network.subword_buckets:
            return {OUTPUT_KEY: self._score_by_length(ids, self.network)}
        # Each token of the batch gets its own row in a table of the batch's vectors
        # (row 0 is padding); the network then indexes that table, not the vocabulary.
        flat = self.network.token_vectors(tokens.flat_values, token_ids.flat_values)
        table = tf.concat([tf.zeros([1, tf.shape(flat)[1]], flat.dtype), flat], axis=0)
        rows = tf.range(1, tf.shape(flat)[0] + 1, dtype=tf.int32)
        positions = pad_ids(tokens.with_flat_values(rows))
        return {OUTPUT_KEY: self._score_by_length(positions, lambda c: self.network(c, table))}

    def _score_by_length(
        self, ids: tf.Tensor, score: Callable[[tf.Tensor], tf.Tensor]
    ) -> tf.Tensor:
        """Score rows of padded ids with `score`, sorted by length in chunks of `CHUNK_ROWS`,
        each chunk padded only to its own longest row: a big batch of mostly short
        messages then does not pay for its longest one on every row."""
        rows = tf.shape(ids)[0]
        lengths = tf.reduce_sum(tf.cast(ids != PAD_INDEX, tf.int32), axis=1)
        order = tf.argsort(lengths, stable=True)
        sorted_ids = tf.gather(ids, order)
        sorted_lengths = tf.gather(lengths, order)
        chunks = (rows + CHUNK_ROWS - 1) // CHUNK_ROWS

        def body(i: tf.Tensor, scores: tf.TensorArray) -> tuple[tf.Tensor, tf.TensorArray]:
            start = i * CHUNK_ROWS
            end = tf.minimum(start + CHUNK_ROWS, rows)
            longest = sorted_lengths[end - 1]
            steps = tf.maximum((longest + PAD_MULTIPLE - 1) // PAD_MULTIPLE, 1) * PAD_MULTIPLE
            return i + 1, scores.write(i, score(sorted_ids[start:end, :steps]))

        scores = tf.TensorArray(tf.float32, size=chunks, infer_shape=False, element_shape=[None])
        _, scores = tf.while_loop(lambda i, _: i < chunks, body, (tf.constant(0), scores))
        sorted_scores = tf.cond(
            rows > 0, lambda: scores.concat(), lambda: tf.zeros([0], tf.float32)
        )
        return tf.scatter_nd(order[:, None], sorted_scores, [rows])

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
