"""`stocksent tail`: follow the labeled output topic (or, with `--dlq`, the dead-letter topic)
and print one row a record, or one JSON object a line with `--json`.

Reads with `read_committed`, so in exactly-once mode it shows only committed records, and
without a consumer group, so it never disturbs the classifier's offsets. Records of one poll
are shown in time order across partitions. Rows are coloured on a terminal (bullish green,
bearish red, dead letters yellow); `NO_COLOR` turns that off.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TextIO

import orjson

from common.kafka_settings import KafkaConnection, client_config
from common.options import (
    SettingsError,
    boolean,
    group,
    non_negative_int,
    parse_settings,
    setting,
    shared,
)
from common.preflight import check_kafka
from common.shared_options import DLQ_TOPIC_OPTION, OUTPUT_TOPIC_OPTION


@dataclass(frozen=True)
class TailSettings:
    """Settings of `stocksent tail`."""

    kafka: KafkaConnection = group(KafkaConnection)
    output_topic: str = shared(OUTPUT_TOPIC_OPTION)
    dlq_topic: str = shared(DLQ_TOPIC_OPTION)
    dlq: bool = setting(boolean, False, "follow the dead-letter topic instead", is_flag=True)
    json: bool = setting(
        boolean, False, "print each record as one JSON object a line", is_flag=True
    )
    from_beginning: bool = setting(boolean, False, "start at the oldest record", is_flag=True)
    since_ms: int = setting(
        non_negative_int, 0, "start at records stamped at or after this epoch ms"
    )
    max_records: int = setting(non_negative_int, 0, "stop after this many records (0 = follow)")
    width: int = setting(non_negative_int, 70, "characters of message text to show")

    @property
    def topic(self) -> str:
        """The topic followed: the dead-letter topic with --dlq, else the labeled one."""
        return self.dlq_topic if self.dlq else self.output_topic


HEADER = f"{'time (UTC)':<20} {'symbol':<8} {'label':<8} {'p(bull)':>7}  text"
DLQ_HEADER = f"{'time (UTC)':<20} {'reason':<16} {'from':<24} detail | value"

COLOURS = {"bullish": "32", "bearish": "31", "dlq": "33", "dim": "2"}


def use_colour(out: TextIO) -> bool:
    """Colour on a terminal, unless NO_COLOR is set (https://no-color.org)."""
    return out.isatty() and not os.environ.get("NO_COLOR")


def paint(text: str, colour: str | None, enabled: bool) -> str:
    """`text` in an ANSI colour of COLOURS when `enabled`."""
    if not enabled or colour not in COLOURS:
        return text
    return f"\033[{COLOURS[colour]}m{text}\033[0m"


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def format_row(record: Mapping[str, Any], width: int, colour: bool = False) -> str:
    """One line for a labeled record: time, first symbol, label, probability, text."""
    created = str(record.get("created_at") or record.get("classified_at") or "")
    when = created.replace("T", " ").removesuffix("Z")[:19]
    symbols = record.get("symbols") or []
    symbol = symbols[0] if symbols else "-"
    sentiment = record.get("sentiment") or {}
    label = str(sentiment.get("label", "?"))
    probability = float(sentiment.get("probability", float("nan")))
    body = _clip(str(record.get("body") or ""), width)
    return (
        f"{when:<20} {symbol:<8} {paint(f'{label:<8}', label, colour)} {probability:>7.3f}  {body}"
    )


def dead_letter_fields(headers: list[tuple[str, bytes]] | None) -> dict[str, str]:
    """The `dlq_*` headers of a dead-letter record, decoded."""
    return {
        name: value.decode(errors="replace")
        for name, value in headers or []
        if name.startswith("dlq_")
    }


def format_dlq_row(
    value: bytes | None, headers: list[tuple[str, bytes]] | None, width: int, colour: bool = False
) -> str:
    """One line for a dead letter: when, why, where from, the detail and the value's start."""
    fields = dead_letter_fields(headers)
    when = fields.get("dlq_at", "").replace("T", " ").removesuffix("Z")[:19]
    reason = fields.get("dlq_reason", "?")
    origin = (
        f"{fields.get('dlq_source_topic', '?')}/{fields.get('dlq_source_partition', '?')}"
        f"@{fields.get('dlq_source_offset', '?')}"
    )
    shown = "(no value)" if value is None else value.decode(errors="replace")
    text = _clip(f"{fields.get('dlq_detail', '')} | {shown}", width)
    return f"{when:<20} {paint(f'{reason:<16}', 'dlq', colour)} {origin:<24} {text}"


def dlq_json(value: bytes | None, headers: list[tuple[str, bytes]] | None) -> dict[str, Any]:
    """A dead letter as one JSON-ready object: its `dlq_*` headers and the original value."""
    fields = dead_letter_fields(headers)
    return {
        "reason": fields.get("dlq_reason"),
        "detail": fields.get("dlq_detail"),
        "source": {
            "topic": fields.get("dlq_source_topic"),
            "partition": _int_or_none(fields.get("dlq_source_partition")),
            "offset": _int_or_none(fields.get("dlq_source_offset")),
        },
        "dead_lettered_at": fields.get("dlq_at"),
        "value": None if value is None else value.decode(errors="replace"),
    }


def _int_or_none(text: str | None) -> int | None:
    return int(text) if text is not None and text.lstrip("-").isdigit() else None


def open_consumer(
    connection: KafkaConnection, topic: str, since_ms: int = 0, from_beginning: bool = False
) -> Any:
    """A group-less `read_committed` consumer assigned to every partition of `topic`,
    positioned at the start, at `since_ms`, or at the end. Raises SettingsError when the
    topic does not exist."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        **client_config(connection),
        isolation_level="read_committed",
        enable_auto_commit=False,
        consumer_timeout_ms=-1,
    )
    partitions = consumer.partitions_for_topic(topic)
    if not partitions:
        consumer.close()
        raise SettingsError(f"topic {topic!r} does not exist (create it: stocksent topics create)")
    assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
    consumer.assign(assigned)
    if from_beginning:
        consumer.seek_to_beginning(*assigned)
    elif since_ms:
        found = consumer.offsets_for_times({tp: since_ms for tp in assigned})
        for tp in assigned:
            at = found.get(tp)
            if at is None:  # nothing that new yet: start at the end
                consumer.seek_to_end(tp)
            else:
                consumer.seek(tp, at.offset)
    else:
        consumer.seek_to_end(*assigned)
    return consumer


def poll_in_time_order(consumer: Any, timeout_ms: int = 500) -> Iterator[Any]:
    """The records of one poll, every partition merged in record-timestamp order."""
    batch = [r for records in consumer.poll(timeout_ms=timeout_ms).values() for r in records]
    batch.sort(key=lambda r: (r.timestamp, r.partition, r.offset))
    return iter(batch)


def render(settings: TailSettings, colour: bool) -> Callable[[Any], str]:
    """The function that turns one consumer record into the line to print."""
    width = settings.width
    if settings.dlq and settings.json:
        return lambda r: orjson.dumps(dlq_json(r.value, r.headers)).decode()
    if settings.dlq:
        return lambda r: format_dlq_row(r.value, r.headers, width, colour)

    def labeled(record: Any) -> str:
        try:
            decoded = orjson.loads(record.value)
        except (orjson.JSONDecodeError, TypeError):
            return f"(undecodable record at offset {record.offset})"
        if settings.json:
            return orjson.dumps(decoded).decode()
        try:
            return format_row(decoded, width, colour)
        except (TypeError, ValueError, AttributeError):
            return f"(unexpected record at offset {record.offset})"

    return labeled


def follow(settings: TailSettings, out: TextIO = sys.stdout) -> int:
    """Prints records as they arrive until interrupted or `max_records` is reached."""
    consumer = open_consumer(
        settings.kafka, settings.topic, settings.since_ms, settings.from_beginning
    )
    stopping = False

    def stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGHUP)}
    shown = 0
    line = render(settings, use_colour(out))
    try:
        if not settings.json:
            print(DLQ_HEADER if settings.dlq else HEADER, file=out, flush=True)
        limit = settings.max_records
        while not stopping:
            for record in poll_in_time_order(consumer):
                print(line(record), file=out, flush=True)
                shown += 1
                if limit and shown >= limit:
                    return 0
    except KeyboardInterrupt:
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        consumer.close()
    return 0


def main(argv: list[str], prog: str = "stocksent tail") -> int:
    """Entry point of `stocksent tail`."""
    settings = parse_settings(TailSettings, argv, prog, __doc__)  # stocksent.cli: exit 2
    check_kafka(settings.kafka)
    return follow(settings)
