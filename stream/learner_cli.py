"""`stocksent learn`: learn from authors' own tags in the stream; promote only a better model.

Exit codes: 0 after a clean stop (SIGTERM/SIGINT) or, with --once, when a candidate was
judged (promoted or rejected: see DIR/history.jsonl); 1 when a round or the service failed;
2 on bad settings; 5 with --once when there were too few tagged messages to train a
candidate (no candidate, no history line).
"""

from __future__ import annotations

import argparse
import logging
import re
import signal
import sys
from collections.abc import Mapping
from pathlib import Path
from types import FrameType
from typing import Any

from common import topics
from common.kafka_settings import CONNECTION_OPTIONS
from common.options import (
    LOG_LEVEL_OPTION,
    Option,
    SettingsError,
    add_options,
    boolean,
    describe,
    non_empty_text,
    optional_path,
    port,
    positive_float,
    positive_int,
    resolve,
    text,
)
from common.preflight import check_kafka, check_port_free

log = logging.getLogger("stream.learner")

DEFAULT_GROUP_ID = "stocksent-learner"
DEFAULT_METRICS_PORT = 9302
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


def fraction(value: str) -> float:
    """A number strictly between 0 and 1."""
    number = float(value)
    if not 0 < number < 1:
        raise ValueError("must be between 0 and 1 (exclusive)")
    return number


def _threads(value: str) -> int:
    threads = int(value)
    if not 1 <= threads <= 64:
        raise ValueError("must be between 1 and 64")
    return threads


OPTIONS: tuple[Option, ...] = (
    *CONNECTION_OPTIONS,
    Option(
        "model_store",
        text,
        "",
        "model store directory to learn into (required; create it with `stocksent models "
        "init`); the window is kept in DIR/learner/",
    ),
    Option(
        "from_topic",
        non_empty_text,
        topics.OUTPUT_TOPIC,
        "labeled topic whose author-tagged records the learner learns from",
    ),
    Option(
        "learner_group_id",
        non_empty_text,
        DEFAULT_GROUP_ID,
        "Kafka consumer group of the learner (its own: never the classifiers')",
    ),
    Option(
        "base_data",
        optional_path,
        None,
        "canonical split directory (train/test .csv.gz): rehearsal sample for fine-tuning and "
        "the base test split the gate guards (unset: neither)",
    ),
    Option(
        "once",
        boolean,
        False,
        "read until caught up with the topic, run one round, exit (0 judged, 5 too few tags)",
        is_flag=True,
    ),
    Option("window", positive_int, 200_000, "most recent tagged messages kept in the window"),
    Option(
        "holdout_fraction",
        fraction,
        0.2,
        "newest share of the window (by created_at) that judges candidates, never trained on",
    ),
    Option(
        "min_new", positive_int, 20_000, "start a round once this many new tagged messages arrived"
    ),
    Option("every", duration, "6h", "start a round at least this often (90s, 15m, 6h, 1d)"),
    Option(
        "min_per_label",
        positive_int,
        100,
        "fewest bullish and bearish messages, each, in the held-out slice and in the rest; "
        "fewer: no candidate (decisions_total{outcome=skipped_too_few_tagged})",
    ),
    Option("epochs", positive_int, 3, "most fine-tuning epochs of a candidate"),
    Option("learning_rate", positive_float, 3e-4, "fine-tuning learning rate (Adam)"),
    Option(
        "training_threads",
        _threads,
        1,
        "TensorFlow threads of the training process (leave cores to the classifiers)",
    ),
    Option(
        "checkpoint_s",
        positive_float,
        60.0,
        "seconds between saves of the window to the store (each followed by an offset commit)",
    ),
    Option("metrics_host", non_empty_text, "127.0.0.1", "address of /metrics and /healthz"),
    Option("metrics_port", port, DEFAULT_METRICS_PORT, "port of /metrics (0 disables)"),
    LOG_LEVEL_OPTION,
)


def learner_config(values: Mapping[str, Any]) -> Any:
    """The service's LearnerConfig from resolved values; raises SettingsError."""
    from dataclasses import replace

    from model.learning import RoundConfig
    from stream.learner import LearnerConfig

    store = (values["model_store"] or "").strip()
    if not store:
        raise SettingsError("--model-store: required (or set STOCKSENT_MODEL_STORE)")
    base: Path | None = values["base_data"]
    if base is not None and not all(
        (base / f"{split}.csv.gz").is_file() or (base / f"{split}.csv").is_file()
        for split in ("train", "test")
    ):
        raise SettingsError(f"--base-data: {base} has no train.csv[.gz] and test.csv[.gz]")
    every = values["every"]
    defaults = RoundConfig()
    round_config = replace(
        defaults,
        holdout_fraction=values["holdout_fraction"],
        min_per_label=values["min_per_label"],
        finetune=replace(
            defaults.finetune, epochs=values["epochs"], learning_rate=values["learning_rate"]
        ),
    )
    return LearnerConfig(
        store=Path(store),
        from_topic=values["from_topic"],
        group_id=values["learner_group_id"],
        base_data=base,
        once=values["once"],
        window=values["window"],
        min_new=values["min_new"],
        every_s=every if isinstance(every, float) else duration(every),
        checkpoint_s=values["checkpoint_s"],
        training_threads=values["training_threads"],
        round=round_config,
    )


def main(argv: list[str], prog: str = "stocksent learn") -> int:
    """Entry point (see the module docstring for the exit codes)."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description=__doc__.split("\n\n", 1)[0],
        epilog=__doc__.split("\n\n", 1)[1],
    )
    add_options(parser, OPTIONS)
    try:
        values = resolve(parser.parse_args(argv), OPTIONS)
        config = learner_config(values)
    except SettingsError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=getattr(logging, values["log_level"]),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("kafka").setLevel(logging.WARNING)
    # Cheap checks first: a wrong address or a taken port is one line in seconds, before
    # TensorFlow loads or a store is created (stocksent.cli prints them, exit 3 or 4).
    connection = {o.name: values[o.name] for o in CONNECTION_OPTIONS}
    check_port_free(values["metrics_host"], values["metrics_port"], "metrics", "--metrics-port")
    check_kafka(connection, connection["connect_timeout"])
    log.info("effective configuration:\n%s", describe(values, OPTIONS))

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
    if values["metrics_port"]:
        health = HealthServer(
            values["metrics_host"], values["metrics_port"], registry, lambda: (True, "ok")
        ).start()
        log.info("metrics on http://%s:%d/metrics", values["metrics_host"], health.port)
    try:
        learner = Learner(config, connection, metrics)
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


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], prog="python -m stream.learner_cli"))
