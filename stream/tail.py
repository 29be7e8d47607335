"""`stocksent tail`: follow the labeled output topic and print one row a record.

Reads with `read_committed`, so in exactly-once mode it shows only committed records, and
without a consumer group, so it never disturbs the classifier's offsets.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Mapping
from typing import Any, TextIO

import orjson

from stocksent import topics
from stocksent.kafka_settings import CONNECTION_OPTIONS, client_config
from stocksent.options import (
    Option,
    SettingsError,
    add_options,
    boolean,
    non_empty_text,
    non_negative_int,
    resolve,
)

OPTIONS: tuple[Option, ...] = (
    *CONNECTION_OPTIONS,
    Option("output_topic", non_empty_text, topics.OUTPUT_TOPIC, "labeled topic to follow"),
    Option("from_beginning", boolean, False, "start at the oldest record", is_flag=True),
    Option("since_ms", non_negative_int, 0, "start at records stamped at or after this epoch ms"),
    Option("max_records", non_negative_int, 0, "stop after this many records (0 = follow)"),
    Option("width", non_negative_int, 70, "characters of message text to show"),
)

HEADER = f"{'time (UTC)':<20} {'symbol':<8} {'label':<8} {'p(bull)':>7}  text"


def format_row(record: Mapping[str, Any], width: int) -> str:
    """One line for a labeled record: time, first symbol, label, probability, text."""
    created = str(record.get("created_at") or record.get("classified_at") or "")
    when = created.replace("T", " ").removesuffix("Z")[:19]
    symbols = record.get("symbols") or []
    symbol = symbols[0] if symbols else "-"
    sentiment = record.get("sentiment") or {}
    label = str(sentiment.get("label", "?"))
    probability = float(sentiment.get("probability", float("nan")))
    body = " ".join(str(record.get("body") or "").split())
    if len(body) > width:
        body = body[: max(width - 1, 0)] + "…"
    return f"{when:<20} {symbol:<8} {label:<8} {probability:>7.3f}  {body}"


def follow(settings: Mapping[str, Any], out: TextIO = sys.stdout) -> int:
    """Prints records as they arrive until interrupted or `max_records` is reached."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        **client_config(settings),
        isolation_level="read_committed",
        enable_auto_commit=False,
        consumer_timeout_ms=-1,
    )
    stopping = False

    def stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    previous = signal.signal(signal.SIGTERM, stop)
    shown = 0
    try:
        topic = settings["output_topic"]
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            print(f"error: topic {topic!r} does not exist", file=sys.stderr)
            return 1
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(assigned)
        if settings["from_beginning"]:
            consumer.seek_to_beginning(*assigned)
        elif settings["since_ms"]:
            found = consumer.offsets_for_times({tp: settings["since_ms"] for tp in assigned})
            for tp in assigned:
                at = found.get(tp)
                if at is None:  # nothing that new yet: start at the end
                    consumer.seek_to_end(tp)
                else:
                    consumer.seek(tp, at.offset)
        else:
            consumer.seek_to_end(*assigned)
        print(HEADER, file=out, flush=True)
        limit = settings["max_records"]
        while not stopping:
            for records in consumer.poll(timeout_ms=500).values():
                for record in records:
                    try:
                        row = format_row(orjson.loads(record.value), settings["width"])
                    except (orjson.JSONDecodeError, TypeError, ValueError):
                        row = f"(undecodable record at offset {record.offset})"
                    print(row, file=out, flush=True)
                    shown += 1
                    if limit and shown >= limit:
                        return 0
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        consumer.close()
    return 0


def main(argv: list[str], prog: str = "stocksent tail") -> int:
    """Entry point of `stocksent tail`."""
    parser = argparse.ArgumentParser(prog=prog, description=__doc__)
    add_options(parser, OPTIONS)
    try:
        settings = resolve(parser.parse_args(argv), OPTIONS)
    except SettingsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return follow(settings)
