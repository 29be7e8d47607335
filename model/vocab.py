"""Word vocabulary, built on the train split only, and its in-graph encoder."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import tensorflow as tf

from model.text import ENTITY_TOKENS, TICKER_TOKEN

PAD_INDEX = 0
OOV_INDEX = 1
PAD_TOKEN = ""  # never produced by the tokenizer (it splits on whitespace)
OOV_TOKEN = "[OOV]"
RESERVED = (PAD_TOKEN, OOV_TOKEN)


def build_vocabulary(token_lists: Iterable[Sequence[str]], min_count: int) -> list[str]:
    """Tokens seen at least `min_count` times, most frequent first.

    Index 0 is padding, 1 is out-of-vocabulary; the entity tokens are always
    present so an unseen ticker still maps to `_ticker_`.
    """
    if min_count < 1:
        raise ValueError(f"min_count must be >= 1, got {min_count}")
    counts: Counter[str] = Counter()
    for tokens in token_lists:
        counts.update(tokens)
    fixed = list(RESERVED) + list(ENTITY_TOKENS)
    frequent = sorted(
        (t for t, c in counts.items() if c >= min_count and t not in fixed),
        key=lambda t: (-counts[t], t),
    )
    return fixed + frequent


def save_vocabulary(vocabulary: Sequence[str], path: str | Path) -> None:
    """One token a line, in index order (line 1 is the empty padding token)."""
    Path(path).write_text("\n".join(vocabulary) + "\n", encoding="utf-8")


def load_vocabulary(path: str | Path) -> list[str]:
    """Inverse of `save_vocabulary`."""
    return Path(path).read_text(encoding="utf-8").split("\n")[:-1]


class TokenEncoder(tf.Module):
    """Tokens -> integer ids inside the graph (a static hash table).

    A `_ticker_<name>` token the vocabulary lacks falls back to `_ticker_`,
    anything else unknown to `OOV_INDEX`.
    """

    def __init__(self, vocabulary: Sequence[str]) -> None:
        super().__init__(name="token_encoder")
        if list(vocabulary[: len(RESERVED)]) != list(RESERVED):
            raise ValueError("vocabulary must start with the padding and OOV tokens")
        self.vocabulary_size = len(vocabulary)
        keys = tf.constant(list(vocabulary[len(RESERVED) :]), dtype=tf.string)
        values = tf.range(len(RESERVED), len(vocabulary), dtype=tf.int64)
        self.table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(keys, values), default_value=OOV_INDEX
        )
        ticker_index = list(vocabulary).index(TICKER_TOKEN)
        self.ticker_index = tf.constant(ticker_index, dtype=tf.int64)
        # Every token outside the vocabulary gets one of these ids.
        self.fallback_ids = (OOV_INDEX, ticker_index)

    def encode(self, tokens: tf.RaggedTensor) -> tf.RaggedTensor:
        """Ragged string tokens -> ragged int32 ids."""
        flat = tokens.flat_values
        ids = self.table.lookup(flat)
        is_ticker = tf.strings.regex_full_match(flat, TICKER_TOKEN + ".+")
        ids = tf.where(tf.logical_and(ids == OOV_INDEX, is_ticker), self.ticker_index, ids)
        return tokens.with_flat_values(tf.cast(ids, tf.int32))
