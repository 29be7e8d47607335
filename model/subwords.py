"""The one definition of a token's subwords: its hashed character n-grams.

A token's vector is its word vector plus the mean of its character n-gram
vectors (the fastText recipe): a word seen once in train (so out of the word
vocabulary), a misspelling or an elongation (`soooo`, `bullllish`) still lands
near the words it shares n-grams with. Training (`model.network`) and serving
(`model.serving`) both take the n-grams from `subword_ids`.

What a token's n-grams are: its first `MAX_WORD_CHARS` characters between the
markers `<` and `>`, then every run of `MIN_N`..`MAX_N` characters of that
(`bull` -> `<bu`, `bul`, `ull`, `ll>`, `<bul`, ..., `<bull`, `bull>`); each is
hashed to one of `buckets` ids, `1..buckets` (0 is padding). Every token has at
least one n-gram: `<x>` is three characters.
"""

from __future__ import annotations

import tensorflow as tf

MIN_N = 3
MAX_N = 5
# Longer words are cut: it bounds the n-grams a token has (at most 45).
MAX_WORD_CHARS = 16
PAD_SUBWORD = 0


def subword_strings(tokens: tf.Tensor) -> tf.RaggedTensor:
    """Flat tokens (n,) -> their character n-grams, ragged (n, (ngrams))."""
    words = tf.strings.substr(tokens, 0, MAX_WORD_CHARS, unit="UTF8_CHAR")
    marked = tf.strings.join(["<", words, ">"])
    chars = tf.strings.unicode_split(marked, "UTF-8", errors="replace")
    return tf.strings.ngrams(chars, ngram_width=tuple(range(MIN_N, MAX_N + 1)), separator="")


def subword_ids(tokens: tf.Tensor, buckets: int) -> tf.RaggedTensor:
    """Flat tokens (n,) -> int32 n-gram ids in 1..buckets, ragged (n, (ngrams))."""
    if buckets < 1:
        raise ValueError(f"buckets must be >= 1, got {buckets}")
    grams = subword_strings(tokens)
    ids = tf.strings.to_hash_bucket_fast(grams.flat_values, buckets) + 1
    return grams.with_flat_values(tf.cast(ids, tf.int32))


def nested_subword_ids(tokens: tf.RaggedTensor, buckets: int) -> tf.RaggedTensor:
    """Ragged tokens (batch, (tokens)) -> ragged n-gram ids (batch, (tokens), (ngrams))."""
    per_token = subword_ids(tokens.flat_values, buckets)
    return tf.RaggedTensor.from_row_splits(per_token, tokens.row_splits, validate=False)


def pad_subwords(nested: tf.RaggedTensor, steps: tf.Tensor) -> tf.Tensor:
    """Ragged n-gram ids (batch, (tokens), (ngrams)) -> dense int32 (batch, steps, ngrams),
    0-padded; `steps` is the padded width of the batch's token ids
    (`model.serving.pad_ids`), so the network's two inputs line up step for step."""
    dense = nested.to_tensor(default_value=PAD_SUBWORD)
    shape = tf.shape(dense)
    return tf.pad(
        dense,
        [[0, 0], [0, steps - shape[1]], [0, tf.maximum(shape[2], 1) - shape[2]]],
        constant_values=PAD_SUBWORD,
    )
