"""Labeled StockTwits data: reading CSV files and naming the canonical split."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from common.checkout import SHARED

LABELS = ("bearish", "bullish")  # index = label value: bullish is the positive class
SPLITS = ("train", "val", "test")
# Where the canonical split lives beside a checkout (never committed into it); the benchmark
# and the tests read it from here, and skip or stop with a clear reason when it is absent.
CANONICAL_SPLIT_DIR = SHARED / "data" / "stocktwits-spy-2017"


@dataclass(frozen=True)
class LabeledMessages:
    """Message bodies with their author's bullish (1) / bearish (0) tag."""

    texts: list[str]
    labels: np.ndarray  # int32, shape (n,)
    source: Path

    def __len__(self) -> int:
        return len(self.texts)


def _open_text(path: Path) -> io.TextIOBase:
    with path.open("rb") as probe:
        magic = probe.read(2)
    if magic == b"\x1f\x8b":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return path.open("r", encoding="utf-8", newline="")


def read_labeled_csv(path: str | Path) -> LabeledMessages:
    """Read a gzip-or-plain CSV with `message` and `sentiment` columns.

    Other columns are ignored. Raises ValueError naming the file and the row
    when a column is missing or a label is not bullish/bearish.
    """
    path = Path(path)
    texts: list[str] = []
    labels: list[int] = []
    with _open_text(path) as handle:
        reader = csv.DictReader(handle)
        missing = {"message", "sentiment"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path}: missing column(s) {sorted(missing)}")
        for line, row in enumerate(reader, start=2):
            label = (row["sentiment"] or "").strip().lower()
            if label not in LABELS:
                raise ValueError(
                    f"{path}: row {line}: sentiment {row['sentiment']!r} "
                    "is not 'bullish' or 'bearish'"
                )
            texts.append(row["message"] or "")
            labels.append(LABELS.index(label))
    return LabeledMessages(texts, np.asarray(labels, dtype=np.int32), path)


def split_path(data_dir: str | Path, split: str) -> Path:
    """Path of one split (`train`, `val`, `test`) in a data directory."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    data_dir = Path(data_dir)
    for name in (f"{split}.csv.gz", f"{split}.csv"):
        if (data_dir / name).is_file():
            return data_dir / name
    raise FileNotFoundError(f"{data_dir}: no {split}.csv.gz or {split}.csv")


def read_split(data_dir: str | Path, split: str) -> LabeledMessages:
    """Read one split of the canonical layout (`DIR/{train,val,test}.csv[.gz]`)."""
    return read_labeled_csv(split_path(data_dir, split))


def split_files(
    data_dir: str | Path, splits: Mapping[str, LabeledMessages]
) -> dict[str, dict[str, Any]]:
    """The manifest's record of the split files a model was made from: per file name, its
    SHA-256 and how many rows were read from it."""
    return {
        split_path(data_dir, name).name: {
            "sha256": sha256_file(split_path(data_dir, name)),
            "rows": len(messages),
        }
        for name, messages in splits.items()
    }


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
