"""The learner service: authors' tags from the output topic in, judged candidates out.

It reads the labeled output topic (`--from-topic`) with a consumer group of its own and
`read_committed` (in exactly-once mode only committed records count), keeps the records whose
author tagged them bullish or bearish in a bounded window (`model.tagged_window`), and runs
a learning round (`model.learning`) every `--every`, or once `--min-new` new tagged messages
have arrived, or once after catching up with `--once`.

Where the window lives: in the model store, `DIR/learner/window.jsonl.gz`, not in a
compacted topic. The store is already the learner's durable state (versions, CURRENT,
history) and a volume shared with the classifiers; keeping the window there makes the
learner's whole state one folder that can be backed up, inspected and copied together with
the models it produced, and needs no extra topic, partitioning or compaction settings on the
cluster. A compacted topic would suit many writers; there is one learner.

Why a restart neither starts from nothing nor loses messages: the window is saved
(atomically: temporary file, then rename) *before* the consumed offsets are committed. A
crash after the save and before the commit re-reads a few records, which the window drops
as duplicates by id; a crash before the save re-reads everything since the last commit.

Training runs in a process of its own (`python -m model.learning`) with bounded TensorFlow
threads, so a classifier on the same cores keeps serving, and this process keeps consuming
meanwhile. The round reads a snapshot of the window taken when it starts.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from common.failures import ExitCode
from common.kafka_settings import KafkaConnection
from model.learning import LEARNER_DIR, RoundConfig, RoundResult
from model.store import LEARNER, ModelStore
from model.tagged_window import TaggedMessage, TaggedWindow, label_value, tag_messages
from stream.learner_metrics import LearnerMetrics

log = logging.getLogger("stream.learner")

WINDOW_FILE = "window.jsonl.gz"
ROUND_WINDOW_FILE = "round-window.jsonl.gz"
ROUND_RESULT_FILE = "round-result.json"
# --once: a partition counts as read when nothing arrives for this long, even if its position
# stays below the end offset taken at the start (a transaction marker, an aborted batch).
ONCE_IDLE_S = 10.0
POLL_MS = 500
MAX_POLL_RECORDS = 5000


@dataclass(frozen=True)
class LearnerConfig:
    """What the service needs besides Kafka."""

    store: Path
    from_topic: str
    group_id: str
    base_data: Path | None
    once: bool
    window: int
    min_new: int
    every_s: float
    checkpoint_s: float
    training_threads: int
    round: RoundConfig


def tagged_rows(
    records: Iterable[Any],
) -> tuple[int, list[tuple[int, str, str | None, int, float | None]]]:
    """(records seen, rows for `tag_messages`) from Kafka records of the output topic: only
    records with an author's tag, a body and an id count; anything unreadable is skipped."""
    seen = 0
    rows = []
    for record in records:
        seen += 1
        try:
            value = orjson.loads(record.value)
        except (orjson.JSONDecodeError, TypeError):
            continue
        if not isinstance(value, dict):
            continue
        label = label_value(value.get("author_sentiment"))
        body, message_id = value.get("body"), value.get("id")
        if label is None or not isinstance(body, str) or not body or type(message_id) is not int:
            continue
        created_at = value.get("created_at")
        timestamp = getattr(record, "timestamp", None)
        fallback = timestamp / 1000.0 if isinstance(timestamp, int) and timestamp > 0 else None
        rows.append(
            (message_id, body, created_at if isinstance(created_at, str) else None, label, fallback)
        )
    return seen, rows


def open_store(root: Path) -> ModelStore:
    """The learner's model store. Where there is none yet (no such directory, or an empty
    one), one is created serving the committed model, so `stocksent learn --once
    --model-store NEW` works on its own; a directory with other things in it is refused
    (StoreError), so a mistyped path never turns a folder into a store."""
    store, created = ModelStore.open_or_init(root, by=LEARNER)
    if created:
        log.warning(
            "%s: no model store there; created one serving the committed model %s",
            root,
            store.current(),
        )
    return store


class Learner:
    """One learner: consume, keep the window, trigger rounds, record their outcome."""

    def __init__(
        self,
        config: LearnerConfig,
        kafka: KafkaConnection,
        metrics: LearnerMetrics,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.kafka = kafka
        self.metrics = metrics
        self.clock = clock
        self.store = open_store(config.store)
        self.learner_dir = self.store.root / LEARNER_DIR
        self.window_path = self.learner_dir / WINDOW_FILE
        self.window = TaggedWindow(config.window)
        self.new_since_candidate = 0
        self.last_round_at = clock()
        self.last_result: RoundResult | None = None
        self._round: subprocess.Popen[bytes] | None = None
        self._round_new = 0
        self._round_started = 0.0
        self._stop = threading.Event()
        self._restore()
        # "no decision for 2 x --every" alerts count from the last round, or from the start
        metrics.last_decision_timestamp.set(self.last_round_at)
        metrics.every_seconds.set(config.every_s)

    # ---- state -----------------------------------------------------------------------

    def _restore(self) -> None:
        if not self.window_path.is_file():
            log.info("no saved window at %s: starting empty", self.window_path)
            return
        try:
            self.window, state = TaggedWindow.load(self.window_path, self.config.window)
        except ValueError as err:
            log.error("%s; starting with an empty window", err)
            return
        self.new_since_candidate = int(state.get("new_since_candidate", 0))
        self.last_round_at = float(state.get("last_round_at", self.last_round_at))
        log.info(
            "window restored from %s: %d tagged messages, %d new since the last candidate",
            self.window_path,
            len(self.window),
            self.new_since_candidate,
        )
        self._update_gauges()

    def _state(self) -> dict[str, Any]:
        return {
            "new_since_candidate": self.new_since_candidate,
            "last_round_at": self.last_round_at,
        }

    def _update_gauges(self) -> None:
        self.metrics.window_messages.set(len(self.window))
        self.metrics.new_tagged_messages.set(self.new_since_candidate)

    def ingest(self, records: Iterable[Any]) -> int:
        """Adds the tagged records among `records` to the window; returns how many were new."""
        seen, rows = tagged_rows(records)
        self.metrics.records_consumed.inc(seen)
        self.metrics.tagged_records.inc(len(rows))
        added = self.window.add_many(tag_messages(rows)) if rows else 0
        self.new_since_candidate += added
        self._update_gauges()
        return added

    def save_window(self) -> None:
        """The window and counters to the store (atomic)."""
        self.window.save(self.window_path, self._state())

    # ---- rounds ----------------------------------------------------------------------

    def round_due(self) -> str | None:
        """Why a round should start now, or None."""
        if self._round is not None:
            return None
        if self.new_since_candidate >= self.config.min_new:
            return f"{self.new_since_candidate} new tagged messages (>= {self.config.min_new})"
        if self.clock() - self.last_round_at >= self.config.every_s:
            return f"{self.config.every_s:.0f}s since the last round"
        return None

    def start_round(self, why: str) -> None:
        """Snapshots the window and starts `python -m model.learning` on it."""
        from common.children import exits_with_parent

        snapshot = self.learner_dir / ROUND_WINDOW_FILE
        result = self.learner_dir / ROUND_RESULT_FILE
        result.unlink(missing_ok=True)
        self.window.save(snapshot)
        command = [
            sys.executable,
            "-m",
            "model.learning",
            "--store",
            str(self.store.root),
            "--messages",
            str(snapshot),
            "--config",
            json.dumps(self.config.round.to_dict()),
            "--threads",
            str(self.config.training_threads),
            "--result",
            str(result),
        ]
        if self.config.base_data is not None:
            command += ["--base-data", str(self.config.base_data)]
        log.info("learning round starts (%s) on %d tagged messages", why, len(self.window))
        self._round_new = self.new_since_candidate
        self._round_started = self.clock()
        self.last_round_at = self._round_started
        self.metrics.training.set(1)
        # stderr is inherited: the round's log and progress bar show in the learner's log.
        self._round = subprocess.Popen(exits_with_parent(command))

    def poll_round(self, wait: bool = False) -> RoundResult | None:
        """The finished round's result (once), else None."""
        if self._round is None:
            return None
        code = self._round.wait() if wait else self._round.poll()
        if code is None:
            return None
        self._round = None
        self.metrics.training.set(0)
        self.new_since_candidate = max(0, self.new_since_candidate - self._round_new)
        result_path = self.learner_dir / ROUND_RESULT_FILE
        try:
            result = RoundResult.from_dict(json.loads(result_path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError) as err:
            result = RoundResult(
                "failed", "?", f"the round exited with {code} and left no result ({err})"
            )
        if code != 0 and result.outcome != "failed":
            result.outcome, result.reason = "failed", f"the round exited with {code}"
        self.record(result)
        return result

    def interrupt_round(self, timeout_s: float = 30.0) -> None:
        """Stops a running round (on shutdown): its candidate, if any, was not judged and no
        history line was written; the next round starts from the saved window."""
        if self._round is None:
            return
        log.info("stopping the running learning round (it will not be judged)")
        self._round.terminate()
        try:
            self._round.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self._round.kill()
            self._round.wait()
        self._round = None
        self.metrics.training.set(0)

    def record(self, result: RoundResult) -> None:
        """Metrics and a log line for a finished round."""
        self.last_result = result
        self.metrics.decisions.labels(result.outcome).inc()
        self.metrics.last_decision_timestamp.set(self.clock())
        if result.training_seconds is not None:
            self.metrics.last_training_seconds.set(result.training_seconds)
        if result.candidate_holdout_accuracy is not None:
            self.metrics.candidate_holdout_accuracy.set(result.candidate_holdout_accuracy)
        if result.current_holdout_accuracy is not None:
            self.metrics.current_holdout_accuracy.set(result.current_holdout_accuracy)
        self._update_gauges()
        level = logging.ERROR if result.outcome == "failed" else logging.INFO
        log.log(
            level,
            "learning round: %s%s (parent %s): %s",
            result.outcome,
            f" {result.candidate}" if result.candidate else "",
            result.parent,
            result.reason,
        )

    # ---- the loop --------------------------------------------------------------------

    def stop(self) -> None:
        """Asks the loop to finish (from a signal handler or another thread)."""
        self._stop.set()

    def run(self) -> int:
        """Consume until stopped (or, with --once, until caught up and one round is done);
        returns the exit code (`ExitCode`)."""
        from kafka import KafkaConsumer, TopicPartition

        from common.kafka_settings import client_config

        consumer = KafkaConsumer(
            **client_config(self.kafka),
            group_id=self.config.group_id,
            enable_auto_commit=False,
            isolation_level="read_committed",
            auto_offset_reset="earliest",
            max_poll_records=MAX_POLL_RECORDS,
        )
        try:
            partitions = self._wait_for_partitions(consumer, TopicPartition)
            if partitions is None:
                return ExitCode.OK  # stopped while waiting
            consumer.assign(partitions)
            targets = consumer.end_offsets(partitions) if self.config.once else {}
            last_checkpoint = last_record = time.monotonic()
            while not self._stop.is_set():
                batch = consumer.poll(timeout_ms=POLL_MS)
                records = [r for part in batch.values() for r in part]
                if records:
                    self.ingest(records)
                    last_record = time.monotonic()
                if self.config.once:
                    if self._caught_up(consumer, targets, time.monotonic() - last_record):
                        break
                    continue
                if time.monotonic() - last_checkpoint >= self.config.checkpoint_s:
                    self._checkpoint(consumer)
                    last_checkpoint = time.monotonic()
                self.poll_round()
                why = self.round_due()
                if why is not None:
                    self._checkpoint(consumer)
                    self.start_round(why)
            self._checkpoint(consumer)
            if self.config.once and not self._stop.is_set():
                log.info("caught up: %d tagged messages in the window", len(self.window))
                self.start_round("--once")
                result = self.poll_round(wait=True)
                self._checkpoint(consumer)
                if result is None or result.outcome == "failed":
                    return ExitCode.FAILED
                if result.outcome.startswith("skipped"):
                    return ExitCode.NOTHING_TO_JUDGE
                return ExitCode.OK
            self.interrupt_round()
            return ExitCode.OK
        finally:
            consumer.close()

    def _checkpoint(self, consumer: Any) -> None:
        """Window first, offsets second (see the module docstring)."""
        self.save_window()
        consumer.commit()

    def _wait_for_partitions(self, consumer: Any, topic_partition: Any) -> list[Any] | None:
        announced = False
        while not self._stop.is_set():
            known = consumer.partitions_for_topic(self.config.from_topic)
            if known:
                return [topic_partition(self.config.from_topic, p) for p in sorted(known)]
            if not announced:
                log.info("waiting for topic %s to exist", self.config.from_topic)
                announced = True
            consumer.topics()  # refresh metadata
            self._stop.wait(1.0)
        return None

    def _caught_up(self, consumer: Any, targets: Mapping[Any, int], idle_s: float) -> bool:
        behind = {tp: end for tp, end in targets.items() if consumer.position(tp) < end}
        if not behind:
            return True
        if idle_s >= ONCE_IDLE_S:
            log.warning(
                "nothing new for %.0fs below the end offsets taken at the start (%s): "
                "counting the topic as read",
                idle_s,
                ", ".join(
                    f"{tp.partition}: {consumer.position(tp)}/{end}" for tp, end in behind.items()
                ),
            )
            return True
        return False


def tagged_messages_from(records: Iterable[Any]) -> list[TaggedMessage]:
    """The tagged messages among output-topic records (for tools and tests)."""
    _, rows = tagged_rows(records)
    return tag_messages(rows)
