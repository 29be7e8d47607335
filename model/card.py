"""MODEL_CARD.md, rendered from the manifest (numbers are never typed by hand)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from common.marked_sections import section, splice
from model.distill import describe

CARD_NAME = "MODEL_CARD.md"
SPEED_BEGIN = "<!-- speed:begin -->"
SPEED_END = "<!-- speed:end -->"


def _pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def _metric_rows(manifest: dict[str, Any]) -> str:
    rows = [
        "| split | n | accuracy | precision | recall | F1 | ROC AUC | log loss |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for split in ("val", "test"):
        m = manifest["metrics"][split]
        rows.append(
            f"| {split} | {m['n']} | {m['accuracy']:.4f} | {m['precision']:.4f} | "
            f"{m['recall']:.4f} | {m['f1']:.4f} | {m['roc_auc']:.4f} | {m['log_loss']:.4f} |"
        )
    return "\n".join(rows)


def _ema(train: dict[str, Any]) -> str:
    momentum = train.get("ema_momentum", 0.0)
    if not momentum:
        return ""
    return (
        f"; the exported weights are an exponential moving average of the training "
        f"weights (momentum {momentum}, the average is what early stopping validated)"
    )


def _subwords(net: dict[str, Any]) -> str:
    buckets = net.get("subword_buckets", 0)
    if not buckets:
        return ""
    return (
        f" + subwords (the mean of each token's character 3-5-gram vectors, {buckets}"
        f" hashed buckets of {net['subword_dim']}, projected to {net['embedding_dim']})"
    )


def _subword_reason(net: dict[str, Any]) -> str:
    if not net.get("subword_buckets", 0):
        return ""
    return (
        "- **Subwords** (`model/subwords.py`, the fastText recipe): a token's vector is its\n"
        "  word vector plus the mean of its character n-gram vectors, so a word seen\n"
        "  once in train (out of the vocabulary), a misspelling or an elongation\n"
        "  (`bullllish`) lands near the words it shares n-grams with; the TF-IDF\n"
        "  teacher's character n-grams had shown that this signal is there. Serving\n"
        "  stores each vocabulary word's summed vector and derives n-grams only for\n"
        "  tokens outside the vocabulary.\n"
    )


TARGET_TEST_ACCURACY = 0.78
SEED_TEST_ACCURACY = 0.717
SIGNIFICANCE_LEVEL = 0.05  # a paired difference counts as real below this McNemar p


def _paired(base: dict[str, Any]) -> str:
    paired = base.get("lstm_vs_baseline_on_test")
    if not paired:
        return ""
    low, high = paired["ci95"]
    return (
        f" Paired on the same test messages: 95% bootstrap interval of the difference"
        f" {low:+.4f} to {high:+.4f}; only the LSTM right on {paired['only_a_right']},"
        f" only the baseline on {paired['only_b_right']} (exact McNemar p"
        f" {paired['mcnemar_p']:.2f}): the two are"
        f" {'' if paired['mcnemar_p'] < SIGNIFICANCE_LEVEL else 'not '}told apart at the"
        f" {SIGNIFICANCE_LEVEL:.0%} level."
    )


def _targets(manifest: dict[str, Any]) -> str:
    test = manifest["metrics"]["test"]["accuracy"]
    base = (manifest.get("baseline") or {}).get("test_accuracy")
    lines = [
        f"- Test accuracy >= {TARGET_TEST_ACCURACY}: **{'met' if test >= TARGET_TEST_ACCURACY else 'not met'}**"
        f" ({test:.4f}; seed {SEED_TEST_ACCURACY}).",
    ]
    if base is not None:
        verdict = "beats" if test > base else "does not beat"
        paired = manifest["baseline"].get("lstm_vs_baseline_on_test")
        noise = (
            f"; a difference inside the test split's noise, McNemar p {paired['mcnemar_p']:.2f}"
            if paired and paired["mcnemar_p"] >= SIGNIFICANCE_LEVEL
            else ""
        )
        lines.append(
            f"- Against the TF-IDF + logistic-regression baseline measured on the same split: "
            f"the LSTM **{verdict}** it ({test:.4f} vs {base:.4f}{noise})."
        )
    return "\n".join(lines)


def _learner_metric_rows(judged: dict[str, Any]) -> str:
    rows = [
        "| messages | model | n | accuracy | balanced accuracy | ROC AUC | log loss |",
        "|---|---|---|---|---|---|---|",
    ]
    for part, name in (("holdout", "held-out slice (newest tagged)"), ("base_test", "base test")):
        figures = judged.get(part)
        if not figures:
            continue
        for model in ("candidate", "current"):
            m = figures[model]
            rows.append(
                f"| {name} | {'this version' if model == 'candidate' else 'parent'} | {m['n']} | "
                f"{m['accuracy']:.4f} | {m['balanced_accuracy']:.4f} | {m['roc_auc']:.4f} | "
                f"{m['log_loss']:.4f} |"
            )
    return "\n".join(rows)


def render_learner_card(manifest: dict[str, Any], speed_section: str | None = None) -> str:
    """The model card of a version the learner fine-tuned (`model.learning`)."""
    learned = manifest["learner"]
    data = learned["data"]
    judged = learned["judged_against_parent"]
    paired = judged["holdout"]["paired"]
    tune = learned["finetune"]
    net = manifest["network"]

    def part(d: dict[str, Any]) -> str:
        span = " to ".join(d["time_range"] or ["?", "?"])
        return (
            f"{d['messages']} messages ({d['bullish']} bullish, {d['bearish']} bearish), "
            f"{span}, SHA-256 `{d['sha256'][:16]}…`"
        )

    rehearsal = data["rehearsal"]
    rehearsal_line = (
        f"{rehearsal['messages']} messages sampled from the base train split "
        f"(`{Path(rehearsal['from']).name}`)"
        if rehearsal.get("from")
        else "none (no base data given)"
    )
    history = "\n".join(
        f"| {r['epoch']} | {r.get('loss', float('nan')):.4f} | {r.get('accuracy', float('nan')):.4f}"
        f" | {r.get('val_loss', 0):.4f} | {r.get('val_accuracy', 0):.4f} | {r['seconds']} |"
        for r in manifest["history"]
    )
    speed = speed_section or "Not measured for this version (same network as its parent)."
    verdict = "promoted" if learned["promote"] else "not promoted"
    return f"""# StockTwits sentiment LSTM — model card (learner version)

Model version `{manifest["model_version"]}` (SHA-256 of the SavedModel files:
`{manifest["content_sha256"]}`), TensorFlow {manifest["tensorflow_version"]},
Keras {manifest["keras_version"]}, exported {manifest["created_at"]}.

Fine-tuned by `stocksent learn` from version `{learned["parent"]}` on messages
whose authors tagged them bullish or bearish in the stream. Same network
(Embedding({manifest["vocabulary_size"]}, {net["embedding_dim"]}){_subwords(net)} →
{" → ".join(f"LSTM({u})" for u in net["lstm_units"])} → Dense(1, sigmoid)), same vocabulary
and the same serving signature and normalisation as its parent; `>= 0.5` is bullish.

## Data

- Trained on: {part(data["training_part"])}.
- Held out (the judge, never trained on): {part(data["holdout"])}.
- Rehearsal (guard against forgetting): {rehearsal_line}.
- Validation (choosing the epoch): the newest {data["validation_messages"]} training messages.

## Judged against its parent (same messages)

{_learner_metric_rows(judged)}

Paired on the held-out slice: only this version right on {paired["only_a_right"]},
only the parent on {paired["only_b_right"]} (exact McNemar p {paired["mcnemar_p"]:.3f}).
Gate: **{verdict}** — {learned["reason"]}.

## Fine-tuning

Adam (lr {tune["learning_rate"]}, clipnorm 1), batch {tune["batch_size"]}, at most
{tune["epochs"]} epochs, early stopping on validation accuracy (patience
{tune["patience"]}, best weights restored): best epoch {manifest["best_epoch"]},
{manifest["training_seconds"]:.0f} s on {manifest.get("machine", "this machine")}.
Epoch 0 is the parent.

| epoch | loss | acc | val loss | val acc | s |
|---|---|---|---|---|---|
{history}

## Inference speed

{SPEED_BEGIN}
{speed}
{SPEED_END}

## Known limits

- Authors' tags are a skewed, self-selected sample; the held-out slice is the
  newest tagged messages, so its figures say how the model does on what the
  stream carries now, not on untagged messages.
- See the parent version's card for the network's design and its other limits.
"""


def render_card(manifest: dict[str, Any], speed_section: str | None = None) -> str:
    """The model card text for an exported model's manifest."""
    if manifest.get("learner"):
        return render_learner_card(manifest, speed_section)
    data = manifest["data"]
    net = manifest["network"]
    train = manifest["training"]
    base = manifest.get("baseline") or {}
    test = manifest["metrics"]["test"]
    files = "\n".join(
        f"| `{name}` | {info['rows']} | `{info['sha256']}` |"
        for name, info in data["files"].items()
    )
    history = "\n".join(
        f"| {r['epoch']} | {r.get('loss', 0):.4f} | {r.get('accuracy', 0):.4f} | "
        f"{r.get('val_loss', 0):.4f} | {r.get('val_accuracy', 0):.4f} | {r['learning_rate']:.2e} |"
        f" {r['seconds']} |"
        for r in manifest["history"]
    )
    baseline_line = (
        f"TF-IDF baseline ({base['model']}, C={base['C']} chosen on val): "
        f"val {base['val_accuracy']:.4f}, test {base['test_accuracy']:.4f}. "
        f"LSTM minus baseline on test: {test['accuracy'] - base['test_accuracy']:+.4f}."
        f"{_paired(base)}"
        if base
        else "TF-IDF baseline: not measured for this build (`--no-baseline`)."
    )
    speed = speed_section or (
        "Not measured yet: run `python -m bench.model_speed --model <this dir> --update-card`."
    )
    cm = test["confusion_matrix"]
    return f"""# StockTwits sentiment LSTM — model card

Model version `{manifest["model_version"]}` (SHA-256 of the SavedModel files:
`{manifest["content_sha256"]}`), TensorFlow {manifest["tensorflow_version"]},
Keras {manifest["keras_version"]}, exported {manifest["created_at"]}.

## What it does

Input: a batch of raw StockTwits message bodies (`tf.string`, shape `[batch]`,
signature `serving_default`, input `messages`). Output: `probability`, the
probability that the author would tag the message **bullish** (float32,
`[batch]`); `>= 0.5` is labelled bullish, else bearish. Normalisation
(`model/text.py`) is inside the graph: the same TensorFlow ops built the
training data.

## Data

- Source: StockTwits messages about `$SPY` from 2017 whose authors tagged them
  Bullish or Bearish — the data set of the seed, Garrett Hoffman's O'Reilly
  article "Introduction to LSTMs with TensorFlow" (2018, repository
  `garretthoffman/lstm-oreilly`), collected there from the StockTwits API.
- Split: the canonical split shipped with the project in
  `../shared/data/stocktwits-spy-2017/` (train / val / test, fixed files; the
  vocabulary, weights and early stopping only ever see train and val).

| file | rows | SHA-256 |
|---|---|---|
{files}

## Metrics (this exact artifact, threshold 0.5, bullish = positive)

{_metric_rows(manifest)}

Test confusion matrix (rows truth, columns prediction; bearish, bullish):
`{cm}`. Majority class on test: {_pct(max(sum(cm[0]), sum(cm[1])) / test["n"])}.
Seed model (Hoffman 2018): 0.717 test accuracy. {baseline_line}

## Network and training

Embedding({manifest["vocabulary_size"]} words, {net["embedding_dim"]}, masked){_subwords(net)} →
SpatialDropout1D({net["embedding_dropout"]}) →
{" → ".join(f"LSTM({u})" for u in net["lstm_units"])} (input dropout {net["lstm_dropout"]},
L2 {net["l2"]} on kernels) → pooling `{net["pooling"]}` → Dense(1, sigmoid).
Binary cross-entropy, Adam (lr {train["learning_rate"]}, clipnorm 1, halved when
{train.get("lr_monitor", "val_loss")} stalls), batch {train["batch_size"]}, seed {train["seed"]}, early stopping on val
accuracy (patience {train["patience"]}, best weights restored): best epoch
{manifest["best_epoch"]} of {len(manifest["history"])}, {manifest["training_seconds"]:.0f} s
of training on {manifest.get("machine", "this machine")}.

| epoch | loss | acc | val loss | val acc | lr | s |
|---|---|---|---|---|---|---|
{history}

### What changed against the seed, and why

- **Vocabulary from train only** (min count {train["min_count"]}, index 1 = OOV;
  a ticker not in the vocabulary falls back to `_ticker_`): the seed's vocabulary
  saw the test set, which flatters its test score.
- **Tokens**: `!`, `?`, emoji and smileys are kept as tokens (they carry
  sentiment); links, users, prices, percentages and numbers become entity
  tokens; cashtags keep their symbol (`_ticker_vix` is not `_ticker_spy`:
  measured +0.7 points for the TF-IDF model) with a `_ticker_` fallback; user
  names are *not* kept (no personal data in the vocabulary). HTML entities are
  handled in the graph (`&#39;` as an apostrophe, the others as the
  punctuation they stand for).
- **Sequence length sized to the data**: right padding per batch to the
  longest message (rounded up to a multiple of 8), at most {manifest["sequence_policy"]["max_tokens"]}
  tokens, masked — the seed padded every message to 244 steps (its longest
  message in *characters*), which was mostly padding, and costs ~6x compute.
- **Loss and optimiser**: binary cross-entropy + Adam with a plateau schedule
  instead of MSE + Adadelta; gradient clipping for the recurrent layers.
- **Regularisation**: SpatialDropout1D on the embeddings, input dropout on the
  LSTMs, L2 on the kernels, word dropout {train.get("word_dropout", 0.0)} (that
  share of training tokens becomes OOV, fresh each epoch){_ema(train)}; early stopping on val with best weights restored
  (the model overfits after a few epochs).
{describe(train)}{_subword_reason(net)}- **Smaller, faster network**: the seed's Embedding(300) → LSTM(128) → LSTM(64)
  became the sizes above, chosen for accuracy *and* inference speed (LSTM(96) →
  LSTM(48) reached the same val accuracy in our runs).
- **A lean inference graph** (`model/serving.py`): the SavedModel does not run
  Keras layers. The same weights run in a graph that projects each LSTM's input
  for all steps in one matmul, needs no per-step masking (right padding + causal
  LSTMs: padding never reaches a message's real steps; the output is read at its
  last real step), and scores big batches in length-sorted chunks of 256 rows,
  each padded only to its own longest message. The export test checks it against
  the Keras model to 1e-5.
- **No XLA by default**: `jit_compile` (flag `--jit-compile`) compiles one program
  per input shape (1-2 s each here, even with batch and length bucketing) and
  measured no faster than the chunked graph on this machine.

## Targets

{_targets(manifest)}

## Rebuild

```
{manifest["rebuild_command"]}
```

`--out` only names where the export goes; it does not change the model.
Training is seeded and uses deterministic TF ops (two runs of one command gave
identical epochs here); on another CPU the last digits may still differ.

## Inference speed

{SPEED_BEGIN}
{speed}
{SPEED_END}

## Known limits

- Trained on one symbol's stream ($SPY, 2017): vocabulary, slang and market
  context drift; other symbols and later years will score lower.
- Labels are authors' self-tags, a biased sample of messages (most messages
  carry no tag); sarcasm and mixed messages are often wrong.
- Text after the first {manifest["sequence_policy"]["max_tokens"]} tokens or
  {manifest["sequence_policy"]["max_input_bytes"]} bytes is ignored.
- The probability is not calibrated beyond what cross-entropy training gives;
  see `calibration.png` from `stocksent evaluate --plots`.
- Non-English text maps mostly to OOV.
- Linear n-gram models are strong rivals on this data: the distillation teachers
  on their own (word + character n-grams, TF-IDF or NB-SVM, + logistic regression)
  score higher than this LSTM on val and test (`python -m model.teacher_grid`;
  `model/DISTILLATION.md`), and its margin over the word-only TF-IDF baseline above is
  inside the test split's noise. The LSTM is what the product asks for; the teachers
  only shape its training targets and are not part of the artifact.
"""


def write_card(directory: str | Path, manifest: dict[str, Any]) -> Path:
    """Write MODEL_CARD.md, keeping a speed section already measured there."""
    path = Path(directory) / CARD_NAME
    speed = None
    if path.is_file():
        speed = read_speed_section(path.read_text(encoding="utf-8"))
        # Figures measured on another build of the model would be wrong here.
        if speed is not None and manifest["model_version"] not in speed:
            speed = None
    path.write_text(render_card(manifest, speed), encoding="utf-8")
    return path


def read_speed_section(card: str) -> str | None:
    """The text between the speed markers, or None."""
    found = section(card, SPEED_BEGIN, SPEED_END)
    return None if found is None else found.removesuffix("\n")


def replace_speed_section(card: str, speed: str) -> str:
    """The card with its speed section replaced by `speed` (unchanged without the markers)."""
    if section(card, SPEED_BEGIN, SPEED_END) is None:
        return card
    return splice(card, SPEED_BEGIN, SPEED_END, speed + "\n")


def main(argv: list[str] | None = None) -> int:
    """`python -m model.card DIR`: re-render DIR/MODEL_CARD.md from DIR/manifest.json."""
    import json
    import sys

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m model.card MODEL_DIR", file=sys.stderr)
        return 2
    directory = Path(args[0])
    manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
    print(write_card(directory, manifest))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
