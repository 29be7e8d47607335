"""What decides a trained model: the network's and the training's hyper-parameters.

Plain dataclasses without TensorFlow, so that `stocksent train --help` and the generated
reference read their defaults without loading it; `model.network` and `model.training`
use them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

POOLINGS = ("last", "last+max")
LR_MONITORS = ("val_loss", "val_accuracy")


@dataclass(frozen=True)
class NetworkConfig:
    """Hyper-parameters of the network; the manifest records them."""

    embedding_dim: int = 128
    lstm_units: tuple[int, ...] = (96, 48)
    embedding_dropout: float = 0.3  # SpatialDropout1D: drops whole word vectors
    lstm_dropout: float = 0.2  # dropout on each LSTM's inputs
    l2: float = 1e-6  # on recurrent and output kernels
    pooling: str = "last"  # one of POOLINGS: "last+max" is max over the top LSTM's outputs too
    # > 0: each token's vector also gets the mean of its character n-gram vectors
    # (model.subwords), hashed into this many buckets of `subword_dim`, projected.
    subword_buckets: int = 0
    subword_dim: int = 32

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        out = asdict(self)
        out["lstm_units"] = list(self.lstm_units)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NetworkConfig:
        """Inverse of `to_dict`."""
        return cls(**{**data, "lstm_units": tuple(data["lstm_units"])})


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
    lr_monitor: str = "val_loss"  # what ReduceLROnPlateau watches: one of LR_MONITORS
    # Distillation (model.distill): train on (1 - w) * tag + w * teacher probability.
    distill_from: str = "none"  # one of model.distill.TEACHERS
    soft_target_weight: float = 0.0  # w
    distill_folds: int = 5
    teacher_c: float = 4.0  # the teacher's LR regularisation (the baseline's val choice)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)
