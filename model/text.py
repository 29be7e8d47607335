"""The one definition of StockTwits text normalisation.

`normalize_batch` and `tokenize_batch` are TensorFlow functions: the training
input pipeline and the exported serving signature both call them, so training
and serving cannot drift apart. `normalize` and `tokenize` are thin Python
wrappers over the same graph ops, for tests and inspection.

What a message becomes, in order:

1. at most `MAX_INPUT_BYTES` bytes are kept (100 KB of text stays fast), and
   invalid UTF-8 (a cut character, lone surrogates) becomes U+FFFD, then a space;
2. lower case (Unicode aware);
3. HTML entities: `&#39;`/`&apos;` act as an apostrophe, all others (`&amp;`,
   `&lt;`, ...) as the punctuation they stand for, i.e. a space;
4. entities become tokens: links `_url_`, users `_user_`, cashtags
   `_ticker_<name>` (`$BRK.B` -> `_ticker_brkb`; the vocabulary maps a ticker it
   has not seen to plain `_ticker_`), prices `_price_`, percentages `_pct_`,
   other numbers `_num_`, smileys `_smile_` / `_frown_`;
5. `!` and `?` (runs collapsed) and each emoji/symbol become tokens of their
   own, apostrophes are dropped (`don't` -> `dont`), other punctuation is a space;
6. whitespace splits tokens; only the first `MAX_TOKENS` are kept.
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

# A StockTwits message is at most 1,000 characters (<= 4 bytes each); longer
# input is cut before any regex runs so the cost is bounded.
MAX_INPUT_BYTES = 4096
# Token counts on the SPY 2017 train split: median 14, p99 33 (with `!`/`?`/emoji
# tokens); 48 keeps every real message whole.
MAX_TOKENS = 48

URL_TOKEN = "_url_"
USER_TOKEN = "_user_"
TICKER_TOKEN = "_ticker_"
PRICE_TOKEN = "_price_"
PERCENT_TOKEN = "_pct_"
NUMBER_TOKEN = "_num_"
SMILE_TOKEN = "_smile_"
FROWN_TOKEN = "_frown_"
ENTITY_TOKENS = (
    URL_TOKEN,
    USER_TOKEN,
    TICKER_TOKEN,
    PRICE_TOKEN,
    PERCENT_TOKEN,
    NUMBER_TOKEN,
    SMILE_TOKEN,
    FROWN_TOKEN,
)

_NUMBER = r"\d[\d,]*(?:\.\d+)?"

# (RE2 pattern, rewrite) applied in order, after lower-casing; the order matters
# (entities before punctuation is stripped, prices and percentages before plain
# numbers). Few passes: each costs about a microsecond a message.
_RULES: tuple[tuple[str, str], ...] = (
    # Apostrophes, literal or as entities, join words: don't -> dont.
    (r"['’`]|&(?:apos|#0*39|#x0*27);", ""),
    # Every other entity (&amp; &lt; &quot; ...) stands for punctuation: a space.
    (r"&#?[0-9a-z]{1,8};", " "),
    (r"(?:https?://|www\.)\S+", f" {URL_TOKEN} "),
    (r"@\w+", f" {USER_TOKEN} "),
    (r"\$([a-z][a-z0-9]*)(?:\.([a-z]+))?", f" {TICKER_TOKEN}\\1\\2 "),
    (r"\$\s?" + _NUMBER + r"[km]?", f" {PRICE_TOKEN} "),
    (r"[+-]?" + _NUMBER + r"\s?%", f" {PERCENT_TOKEN} "),
    (_NUMBER, f" {NUMBER_TOKEN} "),
    (r"(?:^|\s)(?::-?\)|:-?d|;-?\)|\(:)(?:\s|$)", f" {SMILE_TOKEN} "),
    (r"(?:^|\s)(?::-?\(|\):)(?:\s|$)", f" {FROWN_TOKEN} "),
    # Runs of ! or ? become one token each; each symbol (emoji) is a token.
    (r"(!)!*|(\?)\?*|(\p{So})", r" \1\2\3 "),
    # Everything else, whitespace included, collapses to one space.
    (r"[^\p{L}\p{N}\p{So}_!?]+", " "),
)


@tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
def normalize_batch(texts: tf.Tensor) -> tf.Tensor:
    """Normalise a batch of raw message strings to space-separated tokens."""
    texts = tf.strings.substr(texts, 0, MAX_INPUT_BYTES, unit="BYTE")
    texts = tf.strings.unicode_transcode(
        texts, "UTF-8", "UTF-8", errors="replace", replacement_char=0xFFFD
    )
    texts = tf.strings.regex_replace(texts, "\ufffd", " ")
    texts = tf.strings.lower(texts, encoding="utf-8")
    for pattern, rewrite in _RULES:
        texts = tf.strings.regex_replace(texts, pattern, rewrite)
    return tf.strings.strip(texts)


@tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
def tokenize_batch(texts: tf.Tensor) -> tf.RaggedTensor:
    """Raw message strings -> ragged tokens, at most `MAX_TOKENS` a message."""
    tokens = tf.strings.split(normalize_batch(texts))
    return tokens[:, :MAX_TOKENS]


def to_utf8(text: str | bytes) -> bytes:
    """Encode a Python string for the graph; lone surrogates pass through as
    invalid bytes, which the graph replaces."""
    if isinstance(text, bytes):
        return text
    return text.encode("utf-8", errors="surrogatepass")


def normalize(text: str | bytes) -> str:
    """Normalise one message (Python-facing wrapper over `normalize_batch`)."""
    out = normalize_batch(tf.constant([to_utf8(text)], dtype=tf.string))
    return bytes(out.numpy()[0]).decode("utf-8")


def tokenize(texts: Sequence[str | bytes]) -> list[list[str]]:
    """Tokens of each message (Python-facing wrapper over `tokenize_batch`)."""
    if not texts:
        return []
    ragged = tokenize_batch(tf.constant([to_utf8(t) for t in texts], dtype=tf.string))
    return [[bytes(t).decode("utf-8") for t in row] for row in ragged.to_list()]
