"""`make drift-demo`: the learning loop end to end, with time simulated by the canonical data.

The canonical SPY 2017 data has no timestamps, but its `id` is the row of the source file,
which is in posting order: ids grow with time. So:

1. The oldest `--base-fraction` of the messages (by id) are "the past": a base model is
   trained on their canonical train/val rows and judged on their test rows.
2. The rest are "today": they are written as StockTwits API message objects (authors' tags
   in `entities.sentiment`, `created_at` spread evenly over 2017 in id order), replayed by
   `stocksent produce --replay` into a local Kafka and labeled by `stocksent classify`
   serving the base model from a model store: the real pipeline.
3. `stocksent learn --once` reads the labeled topic, trains a candidate from the serving
   model on the tagged window (the newest fifth held out) with the past as base data, and
   promotes it only if it beats the base model on the held-out slice by more than noise.
4. The demo scores the frozen (base) and the serving (adapted, if promoted) model on the
   newest slice of "today" and on the past's test rows, and prints both.

Everything runs on this machine (Kafka from the official jars); nothing is committed.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from model.data import CANONICAL_SPLIT_DIR, LABELS, SPLITS, split_path
from stocksent.service_process import REPO_ROOT, ServiceProcess, exits_with_parent

FIRST_ID = 1_000_000_000  # streamed message ids: FIRST_ID + the source row
YEAR_START = dt.datetime(2017, 1, 1, tzinfo=dt.UTC)
# The base model: the committed model's network, fewer epochs and no distillation, so the
# demo trains it in minutes on two cores.
BASE_TRAINING = [
    "--lstm-units",
    "64,32",
    "--embedding-dropout",
    "0.4",
    "--lstm-dropout",
    "0.3",
    "--batch-size",
    "256",
    "--learning-rate",
    "3e-3",
    "--ema-momentum",
    "0.99",
    "--lr-monitor",
    "val_accuracy",
    "--subword-buckets",
    "8192",
    "--subword-dim",
    "32",
    "--no-baseline",
]


def read_rows(data_dir: Path) -> list[dict[str, Any]]:
    """Every row of the canonical split with its split name, in id (time) order."""
    rows = []
    for split in SPLITS:
        path = split_path(data_dir, split)
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):
                rows.append(
                    {
                        "id": int(row["id"]),
                        "text": row["message"],
                        "label": row["sentiment"].strip().lower(),
                        "split": split,
                    }
                )
    rows.sort(key=lambda r: r["id"])
    return rows


def write_base_data(rows: list[dict[str, Any]], directory: Path) -> None:
    """The past's rows as a canonical-layout data directory (train/val/test CSVs)."""
    directory.mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        with (directory / f"{split}.csv").open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["id", "message", "sentiment"])
            for row in rows:
                if row["split"] == split:
                    writer.writerow([row["id"], row["text"], row["label"]])


def api_message(row: dict[str, Any], created_at: dt.datetime) -> dict[str, Any]:
    """A StockTwits API message object for a row, with the author's tag."""
    return {
        "id": FIRST_ID + row["id"],
        "body": row["text"],
        "created_at": created_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "user": {"id": 1, "username": "demo"},
        "symbols": [{"symbol": "SPY"}],
        "entities": {"sentiment": {"basic": row["label"].capitalize()}},
    }


def write_replay(rows: list[dict[str, Any]], first: int, total: int, path: Path) -> None:
    """Today's rows as JSONL, created_at spread over the year in id order."""
    with path.open("wb") as handle:
        for index, row in enumerate(rows, start=first):
            moment = YEAR_START + dt.timedelta(days=365 * index / total)
            handle.write(orjson.dumps(api_message(row, moment)) + b"\n")


def stocksent(args: list[str], log: Path, timeout: float) -> None:
    """Runs `stocksent ARGS` to completion; its output goes to `log` (tail shown on failure)."""
    argv = [sys.executable, "-m", "stocksent.cli", *args]
    print("  $ stocksent " + " ".join(args), flush=True)
    with log.open("ab") as out:
        result = subprocess.run(
            exits_with_parent(argv),
            cwd=REPO_ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=timeout,
            check=False,
        )
    if result.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise SystemExit(f"stocksent {args[0]} failed ({result.returncode}):\n{tail}")


def scores(model_dir: Path, texts: list[str], labels: np.ndarray) -> dict[str, float]:
    """Accuracy, balanced accuracy and ROC AUC of an exported model."""
    from model.metrics import balanced_accuracy, classification_report
    from model.predictor import Predictor

    predictor = Predictor.load(model_dir)
    probabilities = np.concatenate(
        [predictor.predict(texts[i : i + 1024]) for i in range(0, len(texts), 1024)]
    )
    report = classification_report(labels, probabilities)
    return {
        "accuracy": report["accuracy"],
        "balanced_accuracy": round(balanced_accuracy(labels, probabilities), 6),
        "roc_auc": report["roc_auc"],
    }


def wait_outputs(bootstrap: str, topic: str, expected: int, timeout: float) -> int:
    """Waits until `topic` holds `expected` committed records; returns how many it holds."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, isolation_level="read_committed")
    try:
        numbers = sorted(consumer.partitions_for_topic(topic) or ())
        partitions = [TopicPartition(topic, p) for p in numbers]
        deadline = time.monotonic() + timeout
        held = 0
        while time.monotonic() < deadline:
            held = sum(consumer.end_offsets(partitions).values())
            if held >= expected:
                return held
            time.sleep(1.0)
        return held
    finally:
        consumer.close()


def main(argv: list[str] | None = None) -> int:
    """Runs the demo; prints frozen vs adapted."""
    parser = argparse.ArgumentParser(prog="python -m bench.drift_demo", description=__doc__)
    parser.add_argument("--data", type=Path, default=CANONICAL_SPLIT_DIR)
    parser.add_argument("--base-fraction", type=float, default=0.5)
    parser.add_argument("--base-epochs", type=int, default=4)
    parser.add_argument("--holdout-fraction", type=float, default=0.2)
    parser.add_argument("--work", type=Path, default=None, help="keep everything here")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow loads, here or below
    if not args.data.is_dir():
        print(f"drift demo: no canonical split at {args.data} (see README: Data)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="stocksent-drift-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        return run(args, work)


def run(args: argparse.Namespace, work: Path) -> int:
    """The demo's steps (see the module docstring) in `work`."""
    from common.topics import DLQ_TOPIC, INPUT_TOPIC, OUTPUT_TOPIC
    from stocksent.local_kafka import LocalKafka, free_port_pair

    started = time.monotonic()
    log = work / "demo.log"
    rows = read_rows(args.data)
    cut = int(len(rows) * args.base_fraction)
    past, today = rows[:cut], rows[cut:]
    print(f"{len(rows)} messages: {len(past)} past (ids < {today[0]['id']}), {len(today)} today")

    print("1. training the base model on the past ...", flush=True)
    base_data, base_model = work / "base-data", work / "base-model"
    write_base_data(past, base_data)
    if (base_model / "manifest.json").is_file():  # a kept --work directory: trained already
        print(f"   (kept from an earlier run: {base_model})")
    else:
        stocksent(
            [
                "train",
                "--data",
                str(base_data),
                "--out",
                str(base_model),
                "--epochs",
                str(args.base_epochs),
                *BASE_TRAINING,
            ],
            log,
            timeout=3600,
        )
    store = work / "store"
    shutil.rmtree(store, ignore_errors=True)  # every run starts from the base model
    stocksent(["models", "init", "--store", str(store), "--from", str(base_model)], log, 60)

    print("2. streaming today through Kafka, labeled by the base model ...", flush=True)
    replay = work / "today.jsonl"
    write_replay(today, cut, len(rows), replay)
    broker = LocalKafka(port=free_port_pair(), home=work / "kafka")
    broker.up()
    classifier = None
    try:
        bootstrap = broker.bootstrap
        stocksent(["topics", "create", "--bootstrap-servers", bootstrap], log, 120)
        classifier = ServiceProcess(
            "classify",
            ["--bootstrap-servers", bootstrap, "--model-store", str(store)],
            work / "classifier.log",
        )
        classifier.wait_ready(180)
        stocksent(
            [
                "produce",
                "--bootstrap-servers",
                bootstrap,
                "--replay",
                str(replay),
                "--rate",
                "0",
                "--metrics-port",
                "0",
            ],
            log,
            900,
        )
        held = wait_outputs(bootstrap, OUTPUT_TOPIC, len(today), timeout=900)
        print(f"   {held} labeled records on {OUTPUT_TOPIC} ({INPUT_TOPIC} -> {DLQ_TOPIC} aside)")

        print("3. stocksent learn --once ...", flush=True)
        stocksent(
            [
                "learn",
                "--once",
                "--model-store",
                str(store),
                "--bootstrap-servers",
                bootstrap,
                "--from-topic",
                OUTPUT_TOPIC,
                "--base-data",
                str(base_data),
                "--holdout-fraction",
                str(args.holdout_fraction),
                "--metrics-port",
                "0",
            ],
            work / "learner.log",
            3600,
        )
    finally:
        if classifier is not None:
            classifier.terminate()
        broker.down(wipe=True)

    from model.store import ModelStore

    decision = ModelStore(store).history()[-1]
    serving = ModelStore(store).current()
    print(
        f"   decision: {decision.get('action')} {decision.get('candidate')}: "
        f"{decision.get('reason')}"
    )

    print("4. frozen vs adapted ...", flush=True)
    newest = today[int(len(today) * (1 - args.holdout_fraction)) :]
    base_test = [r for r in past if r["split"] == "test"]
    figures: dict[str, Any] = {"decision": decision, "serving": serving}
    for name, part in (("newest slice of today", newest), ("past test split", base_test)):
        texts = [r["text"] for r in part]
        labels = np.asarray([LABELS.index(r["label"]) for r in part], dtype=np.int32)
        frozen = scores(base_model, texts, labels)
        adapted = scores(ModelStore(store).version_dir(serving), texts, labels)
        figures[name] = {"n": len(part), "frozen": frozen, "adapted": adapted}
        print(f"\n{name} ({len(part)} messages, bullish share {labels.mean():.3f})")
        print(f"  {'':10} {'accuracy':>9} {'balanced':>9} {'ROC AUC':>9}")
        for who, result in (("frozen", frozen), ("adapted", adapted)):
            print(
                f"  {who:10} {result['accuracy']:>9.4f} {result['balanced_accuracy']:>9.4f} "
                f"{result['roc_auc']:>9.4f}"
            )
    figures["seconds"] = round(time.monotonic() - started, 1)
    print(f"\n(adapted = the store's serving version {serving}; {figures['seconds']} s)")
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
