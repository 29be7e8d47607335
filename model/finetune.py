"""Fine-tuning a stored model version: rebuild its Keras network, fit a little more, export.

A version is stored only as its serving SavedModel (`model.serving.InferenceNetwork`), not
as a Keras model. Its variables are the Keras network's weights, with one change: with
subwords, each vocabulary word's exported vector is its word vector plus the projected mean
of its character n-gram vectors (precomputed for serving). `rebuild_network` subtracts that
mean again, so the rebuilt Keras network gives the SavedModel's probabilities (a test checks
it) and trains the same parameters the trainer did.

Fine-tuning keeps the parent's vocabulary and network; it fits at a low learning rate for a
few epochs on the new tagged messages plus, when base data is given, a rehearsal sample of
the base train split, so the new data moves the weights without wiping out the old skills.
The newest share of the training messages is its validation set (the epoch with the best
validation accuracy is kept); the learner's held-out slice is never seen here.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # the network module loads Keras: imported where it is used
    from model.network import NetworkConfig


@dataclass(frozen=True)
class FineTuneConfig:
    """Everything that decides a fine-tuned candidate's weights besides its data."""

    epochs: int = 3
    learning_rate: float = 3e-4  # a tenth of the shipped model's: move, do not restart
    batch_size: int = 128
    patience: int = 1  # early stopping on validation accuracy, best weights restored
    rehearsal_ratio: float = 1.0  # base train messages per new training message
    validation_fraction: float = 0.1  # newest share of the training messages
    seed: int = 1234

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FineTuneConfig:
        """Inverse of `to_dict` (unknown keys are an error)."""
        return cls(**data)


@dataclass
class RebuiltModel:
    """A stored version as a trainable Keras network."""

    network: Any  # keras.Model
    vocabulary: list[str]
    config: NetworkConfig
    manifest: dict[str, Any]
    directory: Path


@dataclass
class FineTuned:
    """The fine-tuned network, its per-epoch log and how long it took."""

    network: Any  # keras.Model
    history: list[dict[str, float]]
    best_epoch: int
    seconds: float
    train_messages: int
    validation_messages: int


def rebuild_network(directory: str | Path) -> RebuiltModel:
    """The Keras network of an exported model directory, with its weights.

    Raises ValueError naming the directory when its weights do not fit the network its
    manifest describes.
    """
    import tensorflow as tf

    from model.export import VOCABULARY_NAME
    from model.network import NetworkConfig, build_network
    from model.serving import subword_vectors
    from model.store import read_manifest
    from model.vocab import RESERVED, TokenEncoder, load_vocabulary

    directory = Path(directory)
    manifest = read_manifest(directory)
    config = NetworkConfig.from_dict(manifest["network"])
    vocabulary = load_vocabulary(directory / VOCABULARY_NAME)
    weights = tf.saved_model.load(str(directory)).network
    embeddings = np.array(weights.embeddings.numpy(), dtype=np.float32)
    expected = (len(vocabulary), config.embedding_dim)
    if embeddings.shape != expected or len(weights.lstm_kernels) != len(config.lstm_units):
        raise ValueError(
            f"{directory}: weights do not fit the manifest's network (embeddings "
            f"{embeddings.shape} for {expected}, {len(weights.lstm_kernels)} LSTMs for "
            f"{len(config.lstm_units)})"
        )
    network = build_network(len(vocabulary), config)
    if config.subword_buckets:
        grams = np.asarray(weights.subword_embeddings.numpy())
        projection = np.asarray(weights.subword_projection.numpy())
        fallback = set(TokenEncoder(vocabulary).fallback_ids)
        words = [i for i in range(len(RESERVED), len(vocabulary)) if i not in fallback]
        embeddings[words] -= subword_vectors(
            tf.constant([vocabulary[i] for i in words], dtype=tf.string),
            config.subword_buckets,
            tf.constant(grams),
            tf.constant(projection),
        ).numpy()
        subwords = network.get_layer("subwords")
        subwords.embeddings.assign(grams)
        subwords.projection.assign(projection)
    network.get_layer("embedding").embeddings.assign(embeddings)
    for i, (kernel, recurrent, bias) in enumerate(
        zip(weights.lstm_kernels, weights.lstm_recurrent_kernels, weights.lstm_biases, strict=True)
    ):
        cell = network.get_layer(f"lstm_{i + 1}").cell
        cell.kernel.assign(kernel.numpy())
        cell.recurrent_kernel.assign(recurrent.numpy())
        cell.bias.assign(bias.numpy())
    head = network.get_layer("bullish")
    head.kernel.assign(weights.head_kernel.numpy())
    head.bias.assign(weights.head_bias.numpy())
    return RebuiltModel(network, vocabulary, config, manifest, directory)


def keras_probabilities(model: RebuiltModel, texts: Sequence[str]) -> np.ndarray:
    """The Keras network's probability of bullish for raw texts (dropout off)."""
    from model.training import keras_inputs
    from model.vocab import TokenEncoder

    inputs = keras_inputs(TokenEncoder(model.vocabulary), list(texts), model.config.subword_buckets)
    return np.asarray(model.network(inputs, training=False)).reshape(-1)


def fine_tune(
    model: RebuiltModel,
    texts: Sequence[str],
    labels: np.ndarray,
    config: FineTuneConfig,
    emit: Callable[[str], None] = print,
) -> FineTuned:
    """Fit `model.network` further on (texts, labels), given oldest first: the newest
    `validation_fraction` is the validation set. Changes the network in place."""
    import keras

    from model.training import (
        EpochLog,
        make_dataset,
        network_inputs,
        set_seeds,
        tokenize_messages,
    )
    from model.vocab import TokenEncoder

    labels = np.asarray(labels, dtype=np.int32)
    if len(texts) != len(labels):
        raise ValueError(f"{len(texts)} texts for {len(labels)} labels")
    held = max(1, round(len(texts) * config.validation_fraction))
    if len(texts) - held < 1:
        raise ValueError(f"too few messages to fine-tune on: {len(texts)}")
    set_seeds(config.seed)
    started = time.perf_counter()
    encoder = TokenEncoder(model.vocabulary)
    buckets = model.config.subword_buckets
    # Shuffled once here (seeded) so rehearsal and new messages mix in every batch.
    order = np.random.default_rng(config.seed).permutation(len(texts) - held)
    train_texts = [texts[i] for i in order]
    ids, grams = network_inputs(encoder, tokenize_messages(train_texts), buckets)
    train_ds = make_dataset(ids, labels[order], config.batch_size, config.seed, subwords=grams)
    val_ids, val_grams = network_inputs(encoder, tokenize_messages(list(texts[-held:])), buckets)
    val_ds = make_dataset(val_ids, labels[-held:], 1024, None, subwords=val_grams)
    network = model.network
    network.compile(
        optimizer=keras.optimizers.Adam(learning_rate=config.learning_rate, clipnorm=1.0),
        loss="binary_crossentropy",
        metrics=["accuracy"],
    )
    before = network.evaluate(val_ds, verbose=0, return_dict=True)
    emit(
        f"parent on the validation messages: loss {before['loss']:.4f} acc {before['accuracy']:.4f}"
    )
    steps = math.ceil(len(train_texts) / config.batch_size)
    log = EpochLog(steps, config.epochs, emit)
    network.fit(
        train_ds,
        validation_data=val_ds,
        epochs=config.epochs,
        verbose=0,
        callbacks=[
            keras.callbacks.EarlyStopping(
                monitor="val_accuracy",
                patience=config.patience,
                restore_best_weights=True,
                mode="max",
            ),
            log,
        ],
    )
    parent_row = {
        "epoch": 0,
        "seconds": 0.0,
        "learning_rate": config.learning_rate,
        "val_loss": round(float(before["loss"]), 5),
        "val_accuracy": round(float(before["accuracy"]), 5),
    }
    best = max(log.rows, key=lambda r: r.get("val_accuracy", 0.0))
    return FineTuned(
        network,
        [parent_row, *log.rows],
        int(best["epoch"]),
        time.perf_counter() - started,
        len(train_texts),
        held,
    )
