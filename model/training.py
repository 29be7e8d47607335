"""Training: data pipeline, fixed seeds, Keras fit with early stopping."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from model.data import LabeledMessages
from model.hyperparameters import TrainingConfig
from model.metrics import correct
from model.network import SUBWORD_IDS, TOKEN_IDS, NetworkConfig, build_network
from model.serving import pad_ids
from model.subwords import nested_subword_ids, pad_subwords
from model.text import tokenize_batch
from model.vocab import OOV_INDEX, TokenEncoder, build_vocabulary


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
    subwords: tf.RaggedTensor | None = None,
) -> tf.data.Dataset:
    """Batches of (padded ids, labels), padded per batch exactly as in serving.

    With `subwords` (ragged n-gram ids, `model.subwords.nested_subword_ids`) the
    inputs are the network's dict of token ids and padded n-gram ids.
    With `word_dropout`, that share of tokens becomes OOV (fresh each epoch): the
    network cannot lean on single rare words, and learns what OOV looks like (with
    subwords a dropped word keeps its n-grams, as a word outside the vocabulary does).
    """
    columns: tuple[Any, ...] = (ids, labels.astype("float32"))
    if subwords is not None:
        columns += (subwords,)
    ds = tf.data.Dataset.from_tensor_slices(columns)
    if shuffle_seed is not None:
        ds = ds.shuffle(len(labels), seed=shuffle_seed, reshuffle_each_iteration=True)
    ds = ds.ragged_batch(batch_size)
    if word_dropout > 0:

        def drop_words(x: tf.RaggedTensor, *rest: Any) -> tuple[Any, ...]:
            flat = x.flat_values
            keep = tf.random.uniform(tf.shape(flat), seed=shuffle_seed) >= word_dropout
            return (x.with_flat_values(tf.where(keep, flat, OOV_INDEX)), *rest)

        ds = ds.map(drop_words)
    if subwords is None:
        return ds.map(lambda x, y: (padded_inputs(x), y)).prefetch(2)
    return ds.map(lambda x, y, grams: (padded_inputs(x, grams), y)).prefetch(2)


def padded_inputs(ids: tf.RaggedTensor, grams: tf.RaggedTensor | None = None) -> Any:
    """What the Keras network takes for ragged token ids (and, with subwords, their ragged
    n-gram ids): the ids padded as in serving, or the dict of both, lined up step for step."""
    padded = pad_ids(ids)
    if grams is None:
        return padded
    return {TOKEN_IDS: padded, SUBWORD_IDS: pad_subwords(grams, tf.shape(padded)[1])}


def network_inputs(
    encoder: TokenEncoder, tokens: tf.RaggedTensor, subword_buckets: int
) -> tuple[tf.RaggedTensor, tf.RaggedTensor | None]:
    """Token ids of tokenized messages and, when the network has subwords, their n-gram ids."""
    ids = encoder.encode(tokens)
    if subword_buckets <= 0:
        return ids, None
    return ids, nested_subword_ids(tokens, subword_buckets)


def keras_inputs(encoder: TokenEncoder, texts: list[str], subword_buckets: int) -> Any:
    """What the Keras network takes for raw message texts: tokenized through the serving
    normalisation, encoded and padded as in training (`padded_inputs`)."""
    return padded_inputs(*network_inputs(encoder, tokenize_messages(texts), subword_buckets))


def soft_target_loss(y_true: Any, y_pred: Any) -> Any:
    """Cross-entropy against column 1 of y_true (the blended target); column 0 is the tag."""
    return keras.losses.binary_crossentropy(y_true[:, 1:2], y_pred)


def tag_accuracy(y_true: Any, y_pred: Any) -> Any:
    """Accuracy against column 0 of y_true: the author's tag, never the soft target."""
    return keras.metrics.binary_accuracy(y_true[:, 0:1], y_pred)


def distillation_targets(
    train_set: LabeledMessages,
    config: TrainingConfig,
    emit: Callable[[str], None],
    val_set: LabeledMessages | None = None,
    network_config: NetworkConfig | None = None,
    teacher_cache: Path | None = None,
) -> np.ndarray | None:
    """(n, 2) float32 [tag, blended target] for train, or None when not distilling.

    LSTM teachers (`lstm+...`) need `val_set` (their early stopping) and `network_config`.
    """
    from model.distill import blend_targets

    if config.distill_from == "none" or config.soft_target_weight == 0.0:
        return None
    cached = None
    if teacher_cache is not None:
        key = teacher_cache_key(train_set, val_set, network_config, config)
        cached = teacher_cache / f"teacher-{key}.npy"
    if cached is not None and cached.is_file():
        teacher = np.load(cached, allow_pickle=False)  # plain float array, never objects
        emit(f"teacher {config.distill_from}: from {cached}")
    else:
        teacher = _teacher(train_set, config, emit, val_set, network_config)
        if cached is not None:
            cached.parent.mkdir(parents=True, exist_ok=True)
            np.save(cached, teacher)
    emit(f"soft-target weight {config.soft_target_weight}")
    targets = blend_targets(train_set.labels, teacher, config.soft_target_weight)
    return np.stack([train_set.labels.astype(np.float32), targets], axis=1)


def teacher_cache_key(
    train_set: LabeledMessages,
    val_set: LabeledMessages | None,
    network_config: NetworkConfig | None,
    config: TrainingConfig,
) -> str:
    """Hash of what decides the teachers: the data and, for LSTM teachers, the network
    and every training setting but the soft-target weight (a student-only setting);
    linear teachers depend on the teacher settings only."""
    import hashlib
    import json

    from model.distill import teacher_parts

    digest = hashlib.sha256()
    settings = {k: v for k, v in config.to_dict().items() if k != "soft_target_weight"}
    network = network_config.to_dict() if network_config is not None else None
    # no LSTMs: only the linear teacher settings count
    if not teacher_parts(config.distill_from)[0]:
        teacher = ("distill_from", "distill_folds", "teacher_c", "seed")
        settings, network = {k: settings[k] for k in teacher}, None
    digest.update(json.dumps([settings, network], sort_keys=True).encode())
    for part in (train_set, val_set):
        if part is not None:
            digest.update("\0".join(part.texts).encode("utf-8", "surrogatepass"))
            digest.update(np.asarray(part.labels, dtype=np.int32).tobytes())
    return digest.hexdigest()[:16]


def _teacher(
    train_set: LabeledMessages,
    config: TrainingConfig,
    emit: Callable[[str], None],
    val_set: LabeledMessages | None,
    network_config: NetworkConfig | None,
) -> np.ndarray:
    """The configured teacher's out-of-fold probabilities on train."""
    from model.distill import teacher_parts, teacher_probabilities

    lstm, linear = teacher_parts(config.distill_from)
    teacher = teacher_probabilities(
        linear or "none",
        train_set.texts,
        train_set.labels,
        config.distill_folds,
        config.teacher_c,
        config.seed,
    )
    assert teacher is not None

    def report(name: str, probabilities: np.ndarray) -> None:
        agree = float(np.mean(correct(train_set.labels, probabilities)))
        emit(f"teacher {name}: out-of-fold accuracy on train {agree:.4f}")

    report(str(linear), teacher)
    if lstm:
        if val_set is None or network_config is None:
            raise ValueError("LSTM teachers need the val split and the network config")
        lstms = lstm_out_of_fold(train_set, val_set, network_config, config, emit)
        report("lstm", lstms)
        teacher = (teacher + lstms) / 2
        report(config.distill_from, teacher)
    return teacher


def lstm_out_of_fold(
    train_set: LabeledMessages,
    val_set: LabeledMessages,
    network_config: NetworkConfig,
    config: TrainingConfig,
    emit: Callable[[str], None],
) -> np.ndarray:
    """P(bullish) for each train message from an LSTM trained on the other folds."""
    from dataclasses import replace

    from model.distill import fold_assignment

    plain = replace(config, distill_from="none", soft_target_weight=0.0)
    assignment = fold_assignment(len(train_set), config.distill_folds, config.seed)
    out = np.zeros(len(train_set), dtype=np.float32)
    for fold in range(config.distill_folds):
        held = np.flatnonzero(assignment == fold)
        kept = np.flatnonzero(assignment != fold)

        def subset(rows: np.ndarray) -> LabeledMessages:
            return replace(
                train_set,
                texts=[train_set.texts[i] for i in rows],
                labels=train_set.labels[rows],
            )

        emit(f"teacher lstm: fold {fold + 1}/{config.distill_folds}")
        teacher = train(subset(kept), val_set, network_config, plain, emit)
        encoder = TokenEncoder(teacher.vocabulary)
        ids, grams = network_inputs(
            encoder, tokenize_messages(subset(held).texts), network_config.subword_buckets
        )
        held_ds = make_dataset(ids, np.zeros(len(held)), 1024, None, subwords=grams)
        out[held] = teacher.network.predict(held_ds, verbose=0)[:, 0]
        keras.backend.clear_session()
    return out


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
    teacher_cache: Path | None = None,
) -> TrainedModel:
    """Build the vocabulary on train, fit with early stopping on val.

    `teacher_cache`: a directory keeping distillation teachers' probabilities, keyed
    by everything that decides them (`teacher_cache_key`), so that trying student
    settings does not retrain the same teachers.
    """
    set_seeds(config.seed)
    started = time.perf_counter()
    train_tokens = tokenize_messages(train_set.texts)
    vocabulary = build_vocabulary(
        ([bytes(t).decode("utf-8") for t in row] for row in train_tokens.to_list()),
        config.min_count,
    )
    emit(f"vocabulary: {len(vocabulary)} tokens (min count {config.min_count}, train only)")
    encoder = TokenEncoder(vocabulary)
    buckets = network_config.subword_buckets
    train_ids, train_grams = network_inputs(encoder, train_tokens, buckets)
    val_ids, val_grams = network_inputs(encoder, tokenize_messages(val_set.texts), buckets)
    distill = distillation_targets(train_set, config, emit, val_set, network_config, teacher_cache)
    if distill is not None:
        set_seeds(config.seed)  # the student starts as it would without teachers
    train_targets = train_set.labels if distill is None else distill
    val_targets = val_set.labels if distill is None else np.stack([val_set.labels] * 2, axis=1)
    train_ds = make_dataset(
        train_ids,
        train_targets,
        config.batch_size,
        config.seed,
        config.word_dropout,
        subwords=train_grams,
    )
    val_ds = make_dataset(val_ids, val_targets, 1024, None, subwords=val_grams)

    network = build_network(len(vocabulary), network_config)
    use_ema = config.ema_momentum > 0
    network.compile(
        optimizer=keras.optimizers.Adam(
            learning_rate=config.learning_rate,
            clipnorm=1.0,
            use_ema=use_ema,
            ema_momentum=config.ema_momentum if use_ema else 0.99,
        ),
        # Distilling, targets are (tag, blended target) pairs: the loss fits the blend,
        # "accuracy" (and so early stopping's val_accuracy) still counts the tags.
        loss="binary_crossentropy" if distill is None else soft_target_loss,
        metrics=(
            ["accuracy"]
            if distill is None
            else [keras.metrics.MeanMetricWrapper(tag_accuracy, name="accuracy")]
        ),
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
