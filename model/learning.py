"""One learning round, without Kafka: tagged messages in, a judged candidate out.

`learning_round(store, messages, base_data)` is the whole decision the learner service
(`stocksent learn`) makes each time it triggers, and what a drift demonstration calls:

1. the messages are de-duplicated by id and normalised text; the newest
   `holdout_fraction` of them by time is the held-out slice, never trained on; fewer than
   `min_per_label` bullish or bearish messages in it or in the rest means no candidate
   (outcome `skipped_too_few_tagged`);
2. the store's current version is rebuilt as a Keras network and fine-tuned on the rest
   (plus a rehearsal sample of the base train split when `base_data` is given; base
   messages whose normalised text is in the held-out slice are left out);
3. the candidate is exported (SavedModel, manifest with a `learner` section and a smoke
   check, model card) and added to the store;
4. the gate (`model.gate`) compares it with the current version on the held-out slice (and
   the base test split): promoted or rejected, with one history line holding the evidence.

Run as `python -m model.learning` it does the same on a saved window file, in a process of
its own with bounded TensorFlow threads; the learner service starts it that way.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from model.finetune import FineTuneConfig
from model.metrics import BULLISH_THRESHOLD
from model.store import LEARNER, ModelStore
from model.tagged_window import TaggedMessage

if TYPE_CHECKING:
    from model.gate import Decision, Scored
    from model.predictor import Predictor

DEFAULT_HOLDOUT_FRACTION = 0.2
# Fewer tagged messages of either side than this, in the held-out slice or in the training
# part, and no candidate is trained: McNemar on a few dozen messages cannot tell models
# apart, and a slice without bearish messages cannot judge bearish recall.
DEFAULT_MIN_PER_LABEL = 100
LEARNER_DIR = "learner"  # DIR/learner/ in the store: the window and the round's files

Outcome = str  # one of OUTCOMES
OUTCOMES = ("promoted", "rejected", "skipped_too_few_tagged", "failed")


@dataclass(frozen=True)
class RoundConfig:
    """Settings of a learning round."""

    holdout_fraction: float = DEFAULT_HOLDOUT_FRACTION
    min_per_label: int = DEFAULT_MIN_PER_LABEL
    finetune: FineTuneConfig = field(default_factory=FineTuneConfig)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {**asdict(self), "finetune": self.finetune.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RoundConfig:
        """Inverse of `to_dict`."""
        return cls(
            holdout_fraction=float(data.get("holdout_fraction", DEFAULT_HOLDOUT_FRACTION)),
            min_per_label=int(data.get("min_per_label", DEFAULT_MIN_PER_LABEL)),
            finetune=FineTuneConfig.from_dict(data.get("finetune") or {}),
        )


@dataclass
class RoundResult:
    """What a round did: its outcome, the versions involved, why, and the figures."""

    outcome: Outcome
    parent: str
    reason: str
    candidate: str | None = None
    history_line: dict[str, Any] | None = None
    training_seconds: float | None = None
    candidate_holdout_accuracy: float | None = None
    current_holdout_accuracy: float | None = None
    counts: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (what the round's process hands back to the service)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RoundResult:
        """Inverse of `to_dict`."""
        return cls(**data)


def split_holdout(
    messages: Sequence[TaggedMessage], fraction: float
) -> tuple[list[TaggedMessage], list[TaggedMessage]]:
    """(training part, held-out slice): the newest `fraction` by time (then id) is held out."""
    if not 0 < fraction < 1:
        raise ValueError(f"holdout fraction must be between 0 and 1, got {fraction}")
    ordered = sorted(messages, key=lambda m: (m.at, m.id))
    held = math.ceil(len(ordered) * fraction) if ordered else 0
    return ordered[: len(ordered) - held], ordered[len(ordered) - held :]


def label_counts(messages: Sequence[TaggedMessage]) -> dict[str, int]:
    """Bullish and bearish counts."""
    bullish = sum(m.label for m in messages)
    return {"bullish": bullish, "bearish": len(messages) - bullish}


def describe_messages(messages: Sequence[TaggedMessage]) -> dict[str, Any]:
    """Counts, time range and a hash of (id, tag, body) of messages, oldest first: enough to
    tell later exactly which data a candidate saw."""
    digest = hashlib.sha256()
    for m in messages:
        digest.update(f"{m.id}\t{m.label}\t".encode() + m.body.encode("utf-8", "surrogatepass"))
        digest.update(b"\n")
    first = messages[0] if messages else None
    last = messages[-1] if messages else None
    return {
        "messages": len(messages),
        **label_counts(messages),
        "ids": [first.id, last.id] if first and last else None,
        "time_range": [_when(first), _when(last)] if first and last else None,
        "sha256": digest.hexdigest(),
    }


def _when(message: TaggedMessage) -> str:
    if message.created_at:
        return message.created_at
    import datetime as dt

    return dt.datetime.fromtimestamp(message.at, dt.UTC).isoformat().replace("+00:00", "Z")


@dataclass
class BaseData:
    """The base split a round rehearses from and guards with: train texts and test texts."""

    directory: Path
    train_texts: list[str]
    train_labels: np.ndarray
    test_texts: list[str]
    test_labels: np.ndarray
    files: dict[str, dict[str, Any]]

    @classmethod
    def read(cls, directory: str | Path) -> BaseData:
        """The train and test splits of a canonical-layout directory."""
        from model.data import read_split, split_files

        directory = Path(directory)
        train, test = read_split(directory, "train"), read_split(directory, "test")
        files = split_files(directory, {"train": train, "test": test})
        return cls(directory, train.texts, train.labels, test.texts, test.labels, files)


def rehearsal_sample(
    base: BaseData,
    size: int,
    excluded_keys: set[str],
    seed: int,
    keys: Callable[[Sequence[str]], list[str]] | None = None,
) -> tuple[list[str], np.ndarray]:
    """A seeded random sample of the base train split, `size` messages at most, none whose
    normalised text is in `excluded_keys` (the held-out slice's)."""
    from model.tagged_window import text_keys

    if size <= 0:
        return [], np.zeros(0, dtype=np.int32)
    order = np.random.default_rng(seed).permutation(len(base.train_texts))
    picked = order[: min(len(order), size + size // 10 + 16)]  # room for the excluded
    hashed = (keys or text_keys)([base.train_texts[i] for i in picked])
    kept = [i for i, key in zip(picked, hashed, strict=True) if key not in excluded_keys][:size]
    return [base.train_texts[i] for i in kept], base.train_labels[kept]


def learning_round(
    store: ModelStore,
    messages: Sequence[TaggedMessage],
    base_data: str | Path | BaseData | None = None,
    config: RoundConfig | None = None,
    emit: Callable[[str], None] = print,
) -> RoundResult:
    """One round (see the module docstring): returns what it did; the store gets the
    candidate and one history line unless the round was skipped."""
    from model.tagged_window import TaggedWindow

    config = config or RoundConfig()
    parent = store.current()
    # De-duplicated here too (by id and normalised text, the newest copy kept), so that no
    # held-out text is also trained on, whoever gathered the messages.
    unique = TaggedWindow(max(1, len(messages)))
    unique.add_many(messages)
    messages = unique.messages()
    training_part, holdout = split_holdout(messages, config.holdout_fraction)
    counts = _round_counts(messages, training_part, holdout)
    reason = _too_few_tagged(counts, config.min_per_label)
    if reason:
        emit(f"no candidate: {reason}")
        return RoundResult("skipped_too_few_tagged", parent, reason, counts=counts)

    base = BaseData.read(base_data) if isinstance(base_data, str | Path) else base_data
    emit(
        f"round from {parent}: {len(training_part)} messages to train on, {len(holdout)} held "
        f"out (newest {config.holdout_fraction:.0%})"
        + (f", rehearsal from {base.directory}" if base else "")
    )
    work = Path(tempfile.mkdtemp(prefix="candidate.", dir=_learner_dir(store)))
    try:
        candidate = _train_candidate(
            store, parent, training_part, holdout, base, config, work, emit
        )
        return _decide(store, candidate, counts, emit)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _round_counts(
    window: Sequence[TaggedMessage],
    training_part: Sequence[TaggedMessage],
    holdout: Sequence[TaggedMessage],
) -> dict[str, int]:
    return {
        "window": len(window),
        "training_part": len(training_part),
        "holdout": len(holdout),
        **{f"holdout_{k}": v for k, v in label_counts(holdout).items()},
        **{f"training_{k}": v for k, v in label_counts(training_part).items()},
    }


def _too_few_tagged(counts: dict[str, int], min_per_label: int) -> str | None:
    """Why the round cannot judge a candidate fairly, or None when each label has enough
    messages both to train on and held out."""
    parts = ("holdout_bullish", "holdout_bearish", "training_bullish", "training_bearish")
    if min(counts[part] for part in parts) >= min_per_label:
        return None
    return (
        f"too few tagged messages: {counts['training_bullish']} bullish and "
        f"{counts['training_bearish']} bearish to train on, {counts['holdout_bullish']} and "
        f"{counts['holdout_bearish']} held out; each needs at least {min_per_label}"
    )


@dataclass
class _Candidate:
    """A fine-tuned, exported candidate in the round's work directory, judged."""

    parent: str
    work: Path
    manifest: dict[str, Any]
    decision: Decision
    data: dict[str, Any]
    training_seconds: float
    config: RoundConfig


def _training_set(
    training_part: Sequence[TaggedMessage],
    holdout: Sequence[TaggedMessage],
    base: BaseData | None,
    config: RoundConfig,
) -> tuple[list[str], np.ndarray, int]:
    """Texts and labels to fine-tune on, and how many of them are rehearsal: the rehearsal
    sample first, so that the newest window messages are the validation set."""
    rehearsal_texts: list[str] = []
    rehearsal_labels = np.zeros(0, dtype=np.int32)
    if base is not None:
        size = round(len(training_part) * config.finetune.rehearsal_ratio)
        rehearsal_texts, rehearsal_labels = rehearsal_sample(
            base, size, {m.text_key for m in holdout}, config.finetune.seed
        )
    texts = rehearsal_texts + [m.body for m in training_part]
    labels = np.concatenate(
        [rehearsal_labels, np.asarray([m.label for m in training_part], dtype=np.int32)]
    )
    return texts, labels, len(rehearsal_texts)


def _train_candidate(
    store: ModelStore,
    parent: str,
    training_part: Sequence[TaggedMessage],
    holdout: Sequence[TaggedMessage],
    base: BaseData | None,
    config: RoundConfig,
    work: Path,
    emit: Callable[[str], None],
) -> _Candidate:
    """Fine-tunes the serving version, exports it to `work` and judges it against the
    serving version on the held-out slice (and the base test split)."""
    from model.export import export_savedmodel
    from model.finetune import fine_tune, rebuild_network
    from model.gate import judge
    from model.predictor import Predictor

    texts, labels, rehearsed = _training_set(training_part, holdout, base, config)
    rebuilt = rebuild_network(store.version_dir(parent))
    tuned = fine_tune(rebuilt, texts, labels, config.finetune, emit)
    emit(f"fine-tuned in {tuned.seconds:.1f}s (best epoch {tuned.best_epoch})")
    export_savedmodel(
        tuned.network,
        rebuilt.vocabulary,
        work,
        bool(rebuilt.manifest.get("jit_compile", False)),
        rebuilt.config.pooling,
    )
    candidate = Predictor.open_savedmodel(work, {"model_version": "pending"})
    current = Predictor.load(store.version_dir(parent))
    held = _scored([m.label for m in holdout], [m.body for m in holdout], candidate, current)
    base_scored = None
    if base is not None:
        base_scored = _scored(base.test_labels, base.test_texts, candidate, current)
    decision = judge(held, base_scored)
    data = {
        "training_part": describe_messages(training_part),
        "holdout": describe_messages(holdout),
        "rehearsal": {
            "messages": rehearsed,
            "from": str(base.directory) if base else None,
            "files": base.files if base else None,
        },
        "validation_messages": tuned.validation_messages,
        # the candidate's prior: what it trained on, rehearsal included
        "bullish_share": round(float(labels.mean()), 6),
    }
    manifest = _write_candidate_manifest(
        work, rebuilt, tuned, candidate, decision, data, config, parent
    )
    return _Candidate(parent, work, manifest, decision, data, tuned.seconds, config)


def _scored(
    labels: Sequence[int] | np.ndarray, texts: list[str], candidate: Predictor, current: Predictor
) -> Scored:
    """Both models' probabilities on one labelled set."""
    from model.gate import Scored

    return Scored(
        np.asarray(labels, dtype=np.int32), candidate.predict(texts), current.predict(texts)
    )


def _decide(
    store: ModelStore, candidate: _Candidate, counts: dict[str, int], emit: Callable[[str], None]
) -> RoundResult:
    """Adds the candidate to the store, promotes or rejects it with its evidence."""
    decision = candidate.decision
    version = store.add_version(candidate.work)
    emit(f"candidate {version}: {decision.reason}")
    evidence = {
        "data": candidate.data,
        "metrics": decision.evidence(),
        "training_seconds": round(candidate.training_seconds, 1),
        "config": candidate.config.to_dict(),
    }
    if decision.promote:
        line = store.promote(version, LEARNER, decision.reason, evidence)
        outcome = "promoted"
    else:
        line = store.reject(version, LEARNER, decision.reason, evidence)
        outcome = "rejected"
    emit(f"{outcome} {version} (parent {candidate.parent}, serving {store.current()})")
    return RoundResult(
        outcome,
        candidate.parent,
        decision.reason,
        candidate=str(candidate.manifest["model_version"]),
        history_line=line,
        training_seconds=round(candidate.training_seconds, 1),
        candidate_holdout_accuracy=decision.holdout["candidate"]["accuracy"],
        current_holdout_accuracy=decision.holdout["current"]["accuracy"],
        counts=counts,
    )


def _learner_dir(store: ModelStore) -> Path:
    path = store.root / LEARNER_DIR
    path.mkdir(parents=True, exist_ok=True)
    # One round at a time per store: an export left by a round that was killed is litter.
    for stale in path.glob("candidate.*"):
        shutil.rmtree(stale, ignore_errors=True)
    return path


def _write_candidate_manifest(
    work: Path,
    rebuilt: Any,
    tuned: Any,
    candidate: Any,
    decision: Any,
    data: dict[str, Any],
    config: RoundConfig,
    parent: str,
) -> dict[str, Any]:
    from model import smoke
    from model.card import write_card
    from model.export import write_manifest
    from model.machine import machine_description

    metrics = {"holdout": decision.holdout["candidate"]}
    if decision.base_test is not None:
        metrics["test"] = decision.base_test["candidate"]
    parent_manifest = rebuilt.manifest
    manifest = write_manifest(
        work,
        {
            "vocabulary_size": len(rebuilt.vocabulary),
            "network": rebuilt.config.to_dict(),
            "training": parent_manifest.get("training"),
            "jit_compile": bool(parent_manifest.get("jit_compile", False)),
            "best_epoch": tuned.best_epoch,
            "training_seconds": round(tuned.seconds, 1),
            "history": tuned.history,
            "metrics": metrics,
            "threshold": BULLISH_THRESHOLD,
            "data": {"bullish_share": data["bullish_share"]},  # where every manifest has it
            "learner": {
                "parent": parent,
                "data": data,
                "finetune": config.finetune.to_dict(),
                "holdout_fraction": config.holdout_fraction,
                "judged_against_parent": decision.evidence(),
                "promote": decision.promote,
                "reason": decision.reason,
            },
            "machine": machine_description(),
            smoke.MANIFEST_FIELD: smoke.record(candidate),
        },
    )
    write_card(work, manifest)
    return manifest


# ---- the round as a process of its own (started by the learner service) -------------------


def main(argv: list[str] | None = None) -> int:
    """`python -m model.learning --store DIR --messages FILE [--base-data DIR] --result FILE`:
    one round on a saved window file; the result (RoundResult) is written to FILE as JSON.
    Exit 0 when the round ran (whatever its outcome), 1 when it failed."""
    parser = argparse.ArgumentParser(prog="python -m model.learning", description=__doc__)
    parser.add_argument("--store", required=True, type=Path)
    parser.add_argument("--messages", required=True, type=Path, help="a saved window file")
    parser.add_argument("--base-data", type=Path, default=None)
    parser.add_argument("--config", default="{}", help="RoundConfig as JSON")
    parser.add_argument("--threads", type=int, default=1, help="TensorFlow threads per pool")
    parser.add_argument("--result", required=True, type=Path)
    args = parser.parse_args(argv)

    from model.machine import limit_tensorflow_threads
    from model.tagged_window import read_messages

    limit_tensorflow_threads(args.threads)

    def emit(line: str) -> None:
        print(f"learning round: {line}", file=sys.stderr, flush=True)

    started = time.monotonic()
    store = ModelStore(args.store).require()
    try:
        result = learning_round(
            store,
            read_messages(args.messages),
            args.base_data,
            RoundConfig.from_dict(json.loads(args.config)),
            emit,
        )
    except Exception as err:
        emit(f"failed: {type(err).__name__}: {err}")
        result = RoundResult("failed", store.current(), f"{type(err).__name__}: {err}")
        _write_json(args.result, result.to_dict())
        raise
    _write_json(args.result, result.to_dict())
    emit(f"done in {time.monotonic() - started:.1f}s: {result.outcome}")
    return 0


def _write_json(path: Path, data: dict[str, Any]) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(data, default=str) + "\n", encoding="utf-8")
    os.replace(temporary, path)


if __name__ == "__main__":
    sys.exit(main())
