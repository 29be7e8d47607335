"""The network: Embedding -> stacked LSTM -> sigmoid, on integer token ids."""

from __future__ import annotations

from typing import Any

import keras
from keras import layers, regularizers

from model.hyperparameters import POOLINGS, NetworkConfig

TOKEN_IDS = "token_ids"
SUBWORD_IDS = "subword_ids"


def build_network(vocabulary_size: int, config: NetworkConfig) -> keras.Model:
    """Ids (batch, steps), 0 = padding (masked) -> probability of bullish (batch, 1).

    With subwords the input is a dict: `token_ids` as above and `subword_ids`
    (batch, steps, n-grams), 0-padded (`model.subwords.pad_subwords`).
    """
    ids = keras.Input(shape=(None,), dtype="int32", name=TOKEN_IDS)
    x = layers.Embedding(vocabulary_size, config.embedding_dim, mask_zero=True, name="embedding")(
        ids
    )
    inputs: Any = ids
    if config.subword_buckets > 0:
        grams = keras.Input(shape=(None, None), dtype="int32", name=SUBWORD_IDS)
        x = SubwordVectors(
            config.subword_buckets, config.subword_dim, config.embedding_dim, name="subwords"
        )([x, grams])
        inputs = {TOKEN_IDS: ids, SUBWORD_IDS: grams}
    x = layers.SpatialDropout1D(config.embedding_dropout, name="embedding_dropout")(x)
    for i, units in enumerate(config.lstm_units):
        last = i == len(config.lstm_units) - 1
        x = layers.LSTM(
            units,
            return_sequences=not last or config.pooling == "last+max",
            dropout=config.lstm_dropout,
            kernel_regularizer=regularizers.l2(config.l2),
            recurrent_regularizer=regularizers.l2(config.l2),
            name=f"lstm_{i + 1}",
        )(x)
    if config.pooling == "last+max":
        x = _MaxAndLastStep(name="pool")(x)
    elif config.pooling not in POOLINGS:
        raise ValueError(f"unknown pooling {config.pooling!r}")
    x = layers.Dropout(config.lstm_dropout, name="head_dropout")(x)
    prob = layers.Dense(
        1, activation="sigmoid", kernel_regularizer=regularizers.l2(config.l2), name="bullish"
    )(x)
    return keras.Model(inputs, prob, name="stocktwits_lstm")


class SubwordVectors(layers.Layer):
    """Word vectors (batch, steps, dim) + the projected mean of each token's n-gram
    vectors; n-gram ids (batch, steps, n-grams) are 1..buckets, 0 = padding.
    Keeps the word vectors' mask."""

    def __init__(self, buckets: int, dim: int, output_dim: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.buckets, self.dim, self.output_dim = buckets, dim, output_dim
        self.supports_masking = True

    def build(self, input_shape: Any) -> None:
        self.embeddings = self.add_weight(
            name="embeddings", shape=(self.buckets + 1, self.dim), initializer="uniform"
        )
        self.projection = self.add_weight(
            name="projection", shape=(self.dim, self.output_dim), initializer="glorot_uniform"
        )

    def call(self, inputs: Any, mask: Any = None) -> Any:
        from keras import ops

        vectors, ids = inputs
        grams = ops.take(self.embeddings, ids, axis=0)
        present = ops.cast(ops.expand_dims(ids > 0, -1), grams.dtype)
        mean = ops.sum(grams * present, axis=2) / ops.maximum(ops.sum(present, axis=2), 1.0)
        return vectors + ops.matmul(mean, self.projection)

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        return None if mask is None else mask[0]

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape[0]


class _MaxAndLastStep(layers.Layer):
    """Masked max over steps, concatenated with the output at the last real step."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs: Any, mask: Any = None) -> Any:
        from keras import ops

        if mask is None:
            mask = ops.ones(ops.shape(inputs)[:2], dtype="bool")
        # LSTM outputs lie in (-1, 1): -1 at padded steps never wins the max.
        maxed = ops.max(ops.where(mask[:, :, None], inputs, -1.0), axis=1)
        lengths = ops.sum(ops.cast(mask, "int32"), axis=1)
        index = ops.maximum(lengths - 1, 0)
        last = ops.take_along_axis(inputs, index[:, None, None], axis=1)[:, 0, :]
        return ops.concatenate([maxed, last], axis=-1)

    def compute_mask(self, inputs: Any, mask: Any = None) -> None:
        return None

    def compute_output_shape(self, input_shape: Any) -> Any:
        return (input_shape[0], 2 * input_shape[-1])
