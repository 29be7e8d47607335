"""Training: data pipeline, fixed seeds, Keras fit with early stopping."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from model.data import LabeledMessages
from model.network import NetworkConfig, build_network
from model.serving import pad_ids
from model.text import tokenize_batch
from model.vocab import OOV_INDEX, TokenEncoder, build_vocabulary


@dataclass(frozen=True)
class TrainingConfig:
    """Everything besides the network that decides the trained weights."""

    seed: int = 1234
    min_count: int = 2  # vocabulary: tokens seen fewer times in train become OOV
    batch_size: int = 128
    epochs: int = 12
    learning_rate: float = 2e-3
    lr_decay_factor: float = 0.5  # ReduceLROnPlateau on val loss
    patience: int = 3  # early stopping on val accuracy (best weights restored)
    word_dropout: float = 0.0  # share of train tokens replaced by OOV each epoch
    ema_momentum: float = 0.0  # > 0: validate, keep and export the weights' moving average
    lr_monitor: str = "val_loss"  # what ReduceLROnPlateau watches: val_loss or val_accuracy

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


@dataclass
class TrainedModel:
    """A trained network with its vocabulary and the per-epoch history."""

    network: keras.Model
    vocabulary: list[str]
    history: list[dict[str, float]]
    best_epoch: int
    seconds: float


def set_seeds(seed: int) -> None:
    """Fix Python, NumPy, TF and Keras seeds (op determinism too)."""
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def tokenize_messages(texts: list[str], chunk: int = 8192) -> tf.RaggedTensor:
    """Tokens of many messages, through the serving normalisation graph."""
    from model.text import to_utf8

    parts = [
        tokenize_batch(tf.constant([to_utf8(t) for t in texts[i : i + chunk]], dtype=tf.string))
        for i in range(0, len(texts), chunk)
    ]
    return tf.concat(parts, axis=0)


def make_dataset(
    ids: tf.RaggedTensor,
    labels: np.ndarray,
    batch_size: int,
    shuffle_seed: int | None,
    word_dropout: float = 0.0,
) -> tf.data.Dataset:
    """Batches of (padded ids, labels), padded per batch exactly as in serving.

    With `word_dropout`, that share of tokens becomes OOV (fresh each epoch): the
    network cannot lean on single rare words, and learns what OOV looks like.
    """
    ds = tf.data.Dataset.from_tensor_slices((ids, labels.astype("float32")))
    if shuffle_seed is not None:
        ds = ds.shuffle(len(labels), seed=shuffle_seed, reshuffle_each_iteration=True)
    ds = ds.ragged_batch(batch_size)
    if word_dropout > 0:

        def drop_words(x: tf.RaggedTensor, y: tf.Tensor) -> tuple[tf.RaggedTensor, tf.Tensor]:
            flat = x.flat_values
            keep = tf.random.uniform(tf.shape(flat), seed=shuffle_seed) >= word_dropout
            return x.with_flat_values(tf.where(keep, flat, OOV_INDEX)), y

        ds = ds.map(drop_words)
    return ds.map(lambda x, y: (pad_ids(x), y)).prefetch(2)


class EpochLog(keras.callbacks.Callback):
    """A tqdm bar over batches and one printed line per epoch."""

    def __init__(self, steps: int, epochs: int, emit: Callable[[str], None]) -> None:
        super().__init__()
        self.steps, self.epochs, self.emit = steps, epochs, emit
        self.rows: list[dict[str, float]] = []
        self._bar: Any = None
        self._start = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        from tqdm import tqdm

        self._start = time.perf_counter()
        self._bar = tqdm(
            total=self.steps, desc=f"epoch {epoch + 1}/{self.epochs}", leave=False, mininterval=2.0
        )

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._bar.update(1)
        if logs and batch % 20 == 0:
            self._bar.set_postfix(loss=f"{logs.get('loss', math.nan):.4f}")

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._bar.close()
        logs = dict(logs or {})
        lr = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        row = {
            "epoch": epoch + 1,
            "seconds": round(time.perf_counter() - self._start, 1),
            "learning_rate": lr,
            **{k: round(float(v), 5) for k, v in logs.items() if k != "learning_rate"},
        }
        self.rows.append(row)
        self.emit(
            f"epoch {row['epoch']:>2}  loss {row.get('loss', 0):.4f} acc {row.get('accuracy', 0):.4f}"
            f"  val_loss {row.get('val_loss', 0):.4f} val_acc {row.get('val_accuracy', 0):.4f}"
            f"  lr {lr:.2e}  {row['seconds']}s"
        )


def train(
    train_set: LabeledMessages,
    val_set: LabeledMessages,
    network_config: NetworkConfig,
    config: TrainingConfig,
    emit: Callable[[str], None] = print,
) -> TrainedModel:
    """Build the vocabulary on train, fit with early stopping on val."""
    set_seeds(config.seed)
    started = time.perf_counter()
    train_tokens = tokenize_messages(train_set.texts)
    vocabulary = build_vocabulary(
        ([bytes(t).decode("utf-8") for t in row] for row in train_tokens.to_list()),
        config.min_count,
    )
    emit(f"vocabulary: {len(vocabulary)} tokens (min count {config.min_count}, train only)")
    encoder = TokenEncoder(vocabulary)
    train_ids = encoder.encode(train_tokens)
    val_ids = encoder.encode(tokenize_messages(val_set.texts))
    train_ds = make_dataset(
        train_ids, train_set.labels, config.batch_size, config.seed, config.word_dropout
    )
    val_ds = make_dataset(val_ids, val_set.labels, 1024, None)

    network = build_network(len(vocabulary), network_config)
    use_ema = config.ema_momentum > 0
    network.compile(
        optimizer=keras.optimizers.Adam(
            learning_rate=config.learning_rate,
            clipnorm=1.0,
            use_ema=use_ema,
            ema_momentum=config.ema_momentum if use_ema else 0.99,
        ),
        loss="binary_crossentropy",
        metrics=["accuracy"],
    )
    steps = math.ceil(len(train_set) / config.batch_size)
    log = EpochLog(steps, config.epochs, emit)
    stop = keras.callbacks.EarlyStopping(
        monitor="val_accuracy", patience=config.patience, restore_best_weights=True, mode="max"
    )
    network.fit(
        train_ds,
        validation_data=val_ds,
        epochs=config.epochs,
        verbose=0,
        callbacks=[
            keras.callbacks.ReduceLROnPlateau(
                monitor=config.lr_monitor,
                mode="min" if config.lr_monitor == "val_loss" else "max",
                factor=config.lr_decay_factor,
                patience=1,
                min_lr=1e-5,
            ),
            # Before early stopping: validation and the kept "best" weights are the averages.
            *([keras.callbacks.SwapEMAWeights(swap_on_epoch=True)] if use_ema else []),
            stop,
            log,
        ],
    )
    best = max(log.rows, key=lambda r: r.get("val_accuracy", 0.0))
    emit(f"best epoch {best['epoch']}: val accuracy {best.get('val_accuracy')}")
    return TrainedModel(
        network, vocabulary, log.rows, int(best["epoch"]), time.perf_counter() - started
    )
