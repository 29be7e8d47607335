"""`stocksent tail`: follow the labeled output topic (or, with `--dlq`, the dead-letter topic,
or with `--topic`, any topic) and print one row a record, or one JSON object a line with
`--json`.

Each record is shown by its kind, told per record, not by the topic's name (the services'
topics may have any name): a dead letter (of the classifier or the aggregator) by its
`dlq_reason` header, a window record (`stocksent aggregate`'s output,
stocktwits.sentiment.by-symbol) by its fields (`window_start`, `window_seconds`), anything
else as a labeled record. A window row shows the window start, symbol, window length, count,
bullish share, mean probability and final or early. The header is shown at start when the
topic's name says what it holds (the labeled topic, a dead-letter topic,
stocktwits.sentiment.by-symbol), else with the first row, and again whenever the kind of row
changes, so it always matches the rows under it.

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
    trimmed,
)
from common.preflight import check_kafka
from common.shared_options import DLQ_TOPIC_OPTION, OUTPUT_TOPIC_OPTION
from common.timestamps import iso_utc
from common.topics import BY_SYMBOL_TOPIC, SENTIMENT_DLQ_TOPIC
from stream.window_view import is_window_record, parse_window, window_length


@dataclass(frozen=True)
class TailSettings:
    """Settings of `stocksent tail`."""

    kafka: KafkaConnection = group(KafkaConnection)
    output_topic: str = shared(OUTPUT_TOPIC_OPTION)
    dlq_topic: str = shared(DLQ_TOPIC_OPTION)
    dlq: bool = setting(boolean, False, "follow the dead-letter topic instead", is_flag=True)
    topic: str = setting(
        trimmed,
        "",
        "follow this topic instead (e.g. stocktwits.sentiment.by-symbol: window rows); "
        "empty: the labeled topic, or the dead-letter topic with --dlq",
        env="TAIL_TOPIC",
    )
    json: bool = setting(
        boolean, False, "print each record as one JSON object a line", is_flag=True
    )
    from_beginning: bool = setting(boolean, False, "start at the oldest record", is_flag=True)
    since_ms: int = setting(
        non_negative_int, 0, "start at records stamped at or after this epoch ms"
    )
    max_records: int = setting(non_negative_int, 0, "stop after this many records (0 = follow)")
    width: int = setting(non_negative_int, 70, "characters of message text to show")

    def __post_init__(self) -> None:
        if self.topic and self.dlq:
            raise SettingsError("--topic and --dlq: give one of them")

    @property
    def followed_topic(self) -> str:
        """The topic followed: --topic, else the dead-letter topic with --dlq, else the
        labeled one."""
        return self.topic or (self.dlq_topic if self.dlq else self.output_topic)


HEADER = f"{'time (UTC)':<20} {'symbol':<8} {'label':<8} {'p(bull)':>7}  text"
DLQ_HEADER = f"{'time (UTC)':<20} {'reason':<16} {'from':<24} detail | value"
WINDOW_HEADER = (
    f"{'window start (UTC)':<20} {'symbol':<8} {'window':>6} {'count':>6} "
    f"{'bullish':>7} {'p(bull)':>7}  state"
)

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


def utc_time(epoch_ms: int) -> str:
    """`YYYY-MM-DD HH:MM:SS` (UTC), as the rows show a time."""
    return iso_utc(epoch_ms / 1000).replace("T", " ")[:19]


def format_window_row(record: Mapping[str, Any], colour: bool = False) -> str:
    """One line for a window record: start, symbol, length, count, bullish share, mean
    probability, final or early. Raises ValueError for an invalid window record."""
    window = parse_window(record)
    when = utc_time(window.start_ms)
    majority = "bullish" if window.bullish_share >= 0.5 else "bearish"
    share = paint(f"{window.bullish_share:>7.1%}", majority, colour)
    state = "final" if window.final else paint("early", "dim", colour)
    return (
        f"{when:<20} {window.symbol:<8} {window_length(window.seconds):>6} {window.count:>6} "
        f"{share} {window.mean_probability:>7.3f}  {state}"
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


LABELED, WINDOW, DEAD_LETTER = "labeled", "window", "dlq"
HEADERS = {LABELED: HEADER, WINDOW: WINDOW_HEADER, DEAD_LETTER: DLQ_HEADER}


def render(settings: TailSettings, colour: bool) -> Callable[[Any], tuple[str | None, str]]:
    """The function that turns one consumer record into (kind of row, line to print); the
    kind (a key of HEADERS) is None for JSON lines and for records that cannot be shown."""
    width = settings.width

    def dead_letter_row(record: Any) -> tuple[str | None, str]:
        if settings.json:
            return None, orjson.dumps(dlq_json(record.value, record.headers)).decode()
        return DEAD_LETTER, format_dlq_row(record.value, record.headers, width, colour)

    def decoded_row(record: Any) -> tuple[str | None, str]:
        try:
            decoded = orjson.loads(record.value)
        except (orjson.JSONDecodeError, TypeError):
            return None, f"(undecodable record at offset {record.offset})"
        if settings.json:
            return None, orjson.dumps(decoded).decode()
        kind = WINDOW if is_window_record(decoded) else LABELED
        try:
            if kind == WINDOW:
                return kind, format_window_row(decoded, colour)
            return kind, format_row(decoded, width, colour)
        except (TypeError, ValueError, AttributeError):
            return None, f"(unexpected {kind} record at offset {record.offset})"

    def row(record: Any) -> tuple[str | None, str]:
        if settings.dlq or is_dead_letter(record.headers):
            return dead_letter_row(record)
        return decoded_row(record)

    return row


def is_dead_letter(headers: list[tuple[str, bytes]] | None) -> bool:
    """True for a record of a dead-letter topic (the classifier's or the aggregator's): it
    carries a `dlq_reason` header."""
    return any(name == "dlq_reason" for name, _ in headers or [])


def first_header(settings: TailSettings) -> str | None:
    """The kind of rows the followed topic holds when that is known from its name: the
    labeled, dead-letter or by-symbol topic. None with --json, and for another topic (its
    first row's header comes with that row)."""
    if settings.json:
        return None
    if settings.dlq:
        return DEAD_LETTER
    known = {
        settings.output_topic: LABELED,
        BY_SYMBOL_TOPIC: WINDOW,
        settings.dlq_topic: DEAD_LETTER,
        SENTIMENT_DLQ_TOPIC: DEAD_LETTER,
    }
    return known.get(settings.followed_topic)


STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


class StopSignals:
    """While entered, SIGTERM and SIGHUP set `stopping` instead of ending the process, so a
    loop can finish its step and close its consumer."""

    def __init__(self) -> None:
        self.stopping = False
        self._previous: dict[int, Any] = {}

    def _stop(self, _signum: int, _frame: object) -> None:
        self.stopping = True

    def __enter__(self) -> StopSignals:
        self._previous = {sig: signal.signal(sig, self._stop) for sig in STOP_SIGNALS}
        return self

    def __exit__(self, *_exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def follow(settings: TailSettings, out: TextIO = sys.stdout) -> int:
    """Prints records as they arrive until interrupted or `max_records` is reached."""
    consumer = open_consumer(
        settings.kafka, settings.followed_topic, settings.since_ms, settings.from_beginning
    )
    shown = 0
    line = render(settings, use_colour(out))
    header = first_header(settings)
    try:
        with StopSignals() as signals:
            if header is not None:
                print(HEADERS[header], file=out, flush=True)
            limit = settings.max_records
            while not signals.stopping:
                for record in poll_in_time_order(consumer):
                    kind, text = line(record)
                    if kind is not None and kind != header:
                        header = kind
                        print(HEADERS[header], file=out, flush=True)
                    print(text, file=out, flush=True)
                    shown += 1
                    if limit and shown >= limit:
                        return 0
    except KeyboardInterrupt:
        pass
    finally:
        consumer.close()
    return 0


def main(argv: list[str], prog: str = "stocksent tail") -> int:
    """Entry point of `stocksent tail`."""
    settings = parse_settings(TailSettings, argv, prog, __doc__)  # stocksent.cli: exit 2
    check_kafka(settings.kafka)
    return follow(settings)
