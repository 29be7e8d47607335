"""A tiny model and drifting tagged messages for the learner's tests.

The tiny parent learns that `rip` is bearish ("rip my calls"); in the stream it has since
turned bullish ("rip higher"). A candidate fine-tuned on the stream's tags learns the new
meaning and beats the parent on the newest messages, by far more than noise.
"""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import numpy as np

BULL = ("moon", "calls", "long", "rocket", "buy", "bull", "green", "breakout")
BEAR = ("puts", "short", "dump", "sell", "crash", "bear", "red", "breakdown")
NEUTRAL = (
    "spy",
    "today",
    "market",
    "the",
    "open",
    "close",
    "volume",
    "chart",
    "week",
    "fed",
    "news",
    "earnings",
    "watch",
    "price",
    "level",
    "trend",
)
DRIFT_WORD = "rip"


def plain_messages(n: int, seed: int) -> tuple[list[str], list[int]]:
    """Messages with one or two sentiment words among neutral ones; the tag follows them."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for _ in range(n):
        label = int(rng.integers(0, 2))
        words = list(rng.choice(BULL if label else BEAR, size=int(rng.integers(1, 3))))
        words += list(rng.choice(NEUTRAL, size=int(rng.integers(2, 7))))
        rng.shuffle(words)
        texts.append(" ".join(words))
        labels.append(label)
    return texts, labels


def drift_messages(n: int, seed: int, label: int) -> tuple[list[str], list[int]]:
    """`rip` among neutral words, tagged `label` (0 before the drift, 1 after)."""
    rng = np.random.default_rng(seed)
    texts = []
    for _ in range(n):
        words = [DRIFT_WORD, *rng.choice(NEUTRAL, size=int(rng.integers(2, 7)))]
        rng.shuffle(words)
        texts.append(" ".join(words))
    return texts, [label] * n


def stream_messages(n: int, seed: int) -> tuple[list[str], list[int]]:
    """After the drift: half plain messages, half `rip` ones tagged bullish, interleaved."""
    plain = plain_messages(n - n // 2, seed)
    drift = drift_messages(n // 2, seed + 1, 1)
    texts, labels = [], []
    for i in range(n):
        source = plain if i % 2 == 0 else drift
        texts.append(source[0][i // 2])
        labels.append(source[1][i // 2])
    return texts, labels


def write_base_split(directory: Path, seed: int = 11) -> Path:
    """A canonical-layout split (train/test .csv.gz) of plain messages only."""
    directory.mkdir(parents=True, exist_ok=True)
    for split, n, offset in (("train", 400, 0), ("val", 100, 1), ("test", 300, 2)):
        texts, labels = plain_messages(n, seed + offset)
        with gzip.open(directory / f"{split}.csv.gz", "wt", encoding="utf-8", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["id", "message", "sentiment"])
            for i, (text, label) in enumerate(zip(texts, labels, strict=True)):
                writer.writerow([i, text, ("bearish", "bullish")[label]])
    return directory


def export_tiny_parent(directory: Path, seed: int = 3) -> Path:
    """A tiny LSTM trained before the drift (`rip` bearish), exported with a full manifest."""
    import keras

    from model import smoke
    from model.export import export_savedmodel, write_manifest
    from model.network import NetworkConfig, build_network
    from model.predictor import Predictor
    from model.text import tokenize
    from model.training import keras_inputs
    from model.vocab import TokenEncoder, build_vocabulary

    keras.utils.set_random_seed(seed)
    plain = plain_messages(500, seed)
    old = drift_messages(150, seed + 1, 0)
    texts, labels = plain[0] + old[0], plain[1] + old[1]
    vocabulary = build_vocabulary(tokenize(texts), min_count=1)
    config = NetworkConfig(
        embedding_dim=8, lstm_units=(8,), embedding_dropout=0.0, lstm_dropout=0.0
    )
    network = build_network(len(vocabulary), config)
    network.compile(optimizer=keras.optimizers.Adam(0.02), loss="binary_crossentropy")
    inputs = keras_inputs(TokenEncoder(vocabulary), texts, 0)
    network.fit(inputs, np.asarray(labels, dtype=np.float32), batch_size=64, epochs=12, verbose=0)
    export_savedmodel(network, vocabulary, directory, jit_compile=False, pooling=config.pooling)
    predictor = Predictor.open_savedmodel(directory, {"model_version": "pending"})
    write_manifest(
        directory,
        {
            "vocabulary_size": len(vocabulary),
            "network": config.to_dict(),
            "jit_compile": False,
            smoke.MANIFEST_FIELD: smoke.record(predictor),
        },
    )
    return directory


def output_record(message_id: int, body: str, label: int | None, minute: int) -> bytes:
    """A labeled record as the classifier publishes it (stream/sentiment_record.schema.json)."""
    import orjson

    tag = None if label is None else ("bearish", "bullish")[label]
    return orjson.dumps(
        {
            "id": message_id,
            "created_at": f"2026-12-04T{minute // 60:02d}:{minute % 60:02d}:00Z",
            "symbols": ["SPY"],
            "body": body,
            "sentiment": {"label": "bullish", "probability": 0.7},
            "model_version": "tiny",
            "author_sentiment": tag,
            "source": {"topic": "stocktwits.messages", "partition": 0, "offset": message_id},
            "classified_at": "2026-12-04T12:00:00.000Z",
        }
    )
