"""`stocksent learn`: learn from authors' own tags in the stream; promote only a better model.

Exit codes: 0 after a clean stop (SIGTERM/SIGINT) or, with --once, when a candidate was
judged (promoted or rejected: see DIR/history.jsonl); 1 when a round or the service failed;
2 on bad settings; 5 with --once when there were too few tagged messages to train a
candidate (no candidate, no history line).
"""

from __future__ import annotations

import logging
import re
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from common import topics
from common.kafka_settings import KafkaConnection
from common.metrics_endpoint import METRICS_HOST, metrics_port_option
from common.options import (
    LOG_LEVEL_OPTION,
    SettingsError,
    boolean,
    describe,
    fraction,
    group,
    int_between,
    non_empty_text,
    optional_path,
    parse_settings,
    positive_float,
    positive_int,
    require,
    setting,
    shared,
)
from common.preflight import check_kafka, check_port_free
from common.shared_options import MODEL_STORE_OPTION

log = logging.getLogger("stream.learner")

DEFAULT_GROUP_ID = "stocksent-learner"
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def duration(value: str) -> float:
    """Seconds from `90`, `90s`, `15m`, `6h`, `1d` (or `1h30m`); must be > 0."""
    value = value.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", value):
        seconds = float(value)
    else:
        parts = re.findall(r"(\d+(?:\.\d+)?)([smhd])", value)
        if not parts or "".join(n + u for n, u in parts) != value:
            raise ValueError("expected a duration such as 90s, 15m, 6h or 1d")
        seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    if seconds <= 0:
        raise ValueError("must be > 0")
    return seconds


@dataclass(frozen=True)
class LearnerSettings:
    """Settings of `stocksent learn`; the store is required and the base data checked."""

    kafka: KafkaConnection = group(KafkaConnection)
    model_store: str = shared(MODEL_STORE_OPTION)
    from_topic: str = setting(
        non_empty_text,
        topics.OUTPUT_TOPIC,
        "labeled topic whose author-tagged records the learner learns from",
    )
    learner_group_id: str = setting(
        non_empty_text,
        DEFAULT_GROUP_ID,
        "Kafka consumer group of the learner (its own: never the classifiers')",
    )
    base_data: Path | None = setting(
        optional_path,
        None,
        "canonical split directory (train/test .csv.gz): rehearsal sample for fine-tuning and "
        "the base test split the gate guards (unset: neither)",
    )
    once: bool = setting(
        boolean,
        False,
        "read until caught up with the topic, run one round, exit (0 judged, 5 too few tags)",
        is_flag=True,
        env="learner_once",
    )
    window: int = setting(positive_int, 200_000, "most recent tagged messages kept in the window")
    holdout_fraction: float = setting(
        fraction,
        0.2,
        "newest share of the window (by created_at) that judges candidates, never trained on",
    )
    min_new: int = setting(
        positive_int, 20_000, "start a round once this many new tagged messages arrived"
    )
    every: float = setting(duration, "6h", "start a round at least this often (90s, 15m, 6h, 1d)")
    min_per_label: int = setting(
        positive_int,
        100,
        "fewest bullish and bearish messages, each, in the held-out slice and in the rest; "
        "fewer: no candidate (decisions_total{outcome=skipped_too_few_tagged})",
    )
    epochs: int = setting(positive_int, 3, "most fine-tuning epochs of a candidate")
    learning_rate: float = setting(positive_float, 3e-4, "fine-tuning learning rate (Adam)")
    training_threads: int = setting(
        int_between(1, 64),
        1,
        "TensorFlow threads of the training process (leave cores to the classifiers)",
    )
    checkpoint_s: float = setting(
        positive_float,
        60.0,
        "seconds between saves of the window to the store (each followed by an offset commit)",
    )
    metrics_host: str = shared(METRICS_HOST)
    metrics_port: int = shared(metrics_port_option("learner"), flag="metrics_port")
    log_level: str = shared(LOG_LEVEL_OPTION)

    def __post_init__(self) -> None:
        require(self, "model_store")
        base = self.base_data
        if base is not None and not all(
            (base / f"{split}.csv.gz").is_file() or (base / f"{split}.csv").is_file()
            for split in ("train", "test")
        ):
            raise SettingsError(f"--base-data: {base} has no train.csv[.gz] and test.csv[.gz]")


def learner_config(settings: LearnerSettings) -> Any:
    """The service's LearnerConfig."""
    from dataclasses import replace

    from model.learning import RoundConfig
    from stream.learner import LearnerConfig

    defaults = RoundConfig()
    round_config = replace(
        defaults,
        holdout_fraction=settings.holdout_fraction,
        min_per_label=settings.min_per_label,
        finetune=replace(
            defaults.finetune, epochs=settings.epochs, learning_rate=settings.learning_rate
        ),
    )
    return LearnerConfig(
        store=Path(settings.model_store),
        from_topic=settings.from_topic,
        group_id=settings.learner_group_id,
        base_data=settings.base_data,
        once=settings.once,
        window=settings.window,
        min_new=settings.min_new,
        every_s=settings.every,
        checkpoint_s=settings.checkpoint_s,
        training_threads=settings.training_threads,
        round=round_config,
    )


def main(argv: list[str], prog: str = "stocksent learn") -> int:
    """Entry point (see the module docstring for the exit codes)."""
    # bad settings raise SettingsError: stocksent.cli prints its one line, exit 2
    settings = parse_settings(LearnerSettings, argv, prog, __doc__)
    config = learner_config(settings)
    logging.basicConfig(
        level=getattr(logging, settings.log_level),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("kafka").setLevel(logging.WARNING)
    # Cheap checks first: a wrong address or a taken port is one line in seconds, before
    # TensorFlow loads or a store is created (stocksent.cli prints them, exit 3 or 4).
    check_port_free(settings.metrics_host, settings.metrics_port, "metrics", "--metrics-port")
    check_kafka(settings.kafka)
    log.info("effective configuration:\n%s", describe(settings))

    from prometheus_client import CollectorRegistry

    from model.machine import limit_tensorflow_threads
    from model.store import StoreError
    from stream.http import HealthServer
    from stream.learner import ExitCode, Learner
    from stream.learner_metrics import LearnerMetrics

    # This process only normalises texts (the window's dedupe): one thread is plenty.
    limit_tensorflow_threads(1)
    registry = CollectorRegistry()
    metrics = LearnerMetrics(registry)
    health = None
    if settings.metrics_port:
        health = HealthServer(
            settings.metrics_host, settings.metrics_port, registry, lambda: (True, "ok")
        ).start()
        log.info("metrics on http://%s:%d/metrics", settings.metrics_host, health.port)
    try:
        learner = Learner(config, settings.kafka, metrics)
    except StoreError as err:
        log.error("%s", err)
        if health is not None:
            health.stop()
        return ExitCode.FAILED

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("%s: saving the window, then stopping", signal.Signals(signum).name)
        learner.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        return learner.run()
    except Exception:
        log.exception("the learner stopped on an unexpected error")
        return ExitCode.FAILED
    finally:
        if health is not None:
            health.stop()
