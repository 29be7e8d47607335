"""`stocksent tail` rows: labeled records, window records (--topic), dead letters (--dlq) and
JSON lines (--json)."""

from __future__ import annotations

from types import SimpleNamespace

import orjson
import pytest

from common.options import SettingsError, parse_settings
from common.topics import BY_SYMBOL_TOPIC, DLQ_TOPIC, OUTPUT_TOPIC, SENTIMENT_DLQ_TOPIC
from stream.aggregate.windows import iso_ms
from stream.tail import (
    DEAD_LETTER,
    LABELED,
    WINDOW,
    WINDOW_HEADER,
    TailSettings,
    dlq_json,
    first_header,
    format_dlq_row,
    format_row,
    format_window_row,
    paint,
    render,
)
from tests.window_support import BASE_MS, record, value

HEADERS = [
    ("source", b"replay"),
    ("dlq_reason", b"invalid_json"),
    ("dlq_detail", b"unexpected end of data: line 1 column 12"),
    ("dlq_source_topic", b"stocktwits.messages"),
    ("dlq_source_partition", b"2"),
    ("dlq_source_offset", b"41"),
    ("dlq_at", b"2026-12-04T15:40:00.123Z"),
]


def test_labeled_row() -> None:
    record = {
        "created_at": "2026-05-29T13:30:11Z",
        "symbols": ["TSLA"],
        "sentiment": {"label": "bullish", "probability": 0.8312},
        "body": "$TSLA   breaking\nout",
    }
    assert format_row(record, 70) == (
        "2026-05-29 13:30:11  TSLA     bullish    0.831  $TSLA breaking out"
    )
    assert "\033[32mbullish" in format_row(record, 70, colour=True)


def test_dead_letter_row_says_why_and_where_from() -> None:
    row = format_dlq_row(b'{"id": 1, "bo', HEADERS, 80)
    assert row.startswith("2026-12-04 15:40:00  invalid_json     stocktwits.messages/2@41")
    assert "unexpected end of data" in row and '{"id": 1, "bo' in row


def test_dead_letter_as_json_keeps_the_original_value() -> None:
    line = orjson.dumps(dlq_json(b'{"id": 1, "bo', HEADERS))
    assert orjson.loads(line) == {
        "reason": "invalid_json",
        "detail": "unexpected end of data: line 1 column 12",
        "source": {"topic": "stocktwits.messages", "partition": 2, "offset": 41},
        "dead_lettered_at": "2026-12-04T15:40:00.123Z",
        "value": '{"id": 1, "bo',
    }


def test_no_colour_unless_asked() -> None:
    assert paint("x", "bearish", False) == "x"
    assert paint("x", "bearish", True) == "\033[31mx\033[0m"


def test_window_row_from_a_record_of_the_builder() -> None:
    built = record("BTC.X", BASE_MS, 8, 6, final=False)
    row = format_window_row(built)
    start = iso_ms(BASE_MS).replace("T", " ")[:19]
    assert row.split() == [
        *start.split(),
        "BTC.X",
        "1m",
        "8",
        f"{6 / 8:.1%}",
        f"{built['mean_probability']:.3f}",
        "early",
    ]
    assert len(row.split("  early")[0]) == len(WINDOW_HEADER.split("  state")[0])
    assert format_window_row({**built, "final": True}).endswith("  final")
    assert "\033[32m" in format_window_row(built, colour=True)


def settings(*argv: str) -> TailSettings:
    return parse_settings(TailSettings, list(argv), "tail", environ={})


def test_topic_option_picks_the_topic_and_refuses_dlq() -> None:
    assert settings().followed_topic == OUTPUT_TOPIC
    assert settings("--dlq").followed_topic == DLQ_TOPIC
    assert settings("--topic", BY_SYMBOL_TOPIC).followed_topic == BY_SYMBOL_TOPIC
    with pytest.raises(SettingsError, match="--topic and --dlq"):
        settings("--topic", BY_SYMBOL_TOPIC, "--dlq")


def test_first_header_follows_the_topic() -> None:
    assert first_header(settings()) == LABELED
    assert first_header(settings("--topic", BY_SYMBOL_TOPIC)) == WINDOW
    assert first_header(settings("--dlq")) == DEAD_LETTER
    assert first_header(settings("--json")) is None
    assert first_header(settings("--topic", "my.windows")) is None  # shown with the first row
    assert first_header(settings("--topic", OUTPUT_TOPIC)) == LABELED
    assert first_header(settings("--topic", SENTIMENT_DLQ_TOPIC)) == DEAD_LETTER


def test_a_dead_letter_on_any_topic_is_shown_as_one() -> None:
    headers = [("dlq_reason", b"late"), ("dlq_source_topic", b"stocktwits.sentiment")]
    record = SimpleNamespace(value=b'{"id": 5}', offset=7, headers=headers)
    line = render(settings("--topic", SENTIMENT_DLQ_TOPIC), colour=False)
    assert line(record) == (DEAD_LETTER, format_dlq_row(record.value, headers, 70))
    as_json = render(settings("--topic", "any", "--json"), colour=False)
    assert orjson.loads(as_json(record)[1])["reason"] == "late"


def test_each_record_is_shown_by_its_kind() -> None:
    labeled = {
        "created_at": "2026-05-29T13:30:11Z",
        "symbols": ["TSLA"],
        "sentiment": {"label": "bearish", "probability": 0.2},
        "body": "down",
    }
    line = render(settings("--topic", "any"), colour=False)
    window = value("AAPL", BASE_MS, 4, 1)
    assert line(SimpleNamespace(value=window, offset=1, headers=[])) == (
        WINDOW,
        format_window_row(orjson.loads(window)),
    )
    assert line(SimpleNamespace(value=orjson.dumps(labeled), offset=2, headers=[])) == (
        LABELED,
        format_row(labeled, 70),
    )
    broken = orjson.dumps({**orjson.loads(window), "count": 0})
    assert line(SimpleNamespace(value=broken, offset=3, headers=[])) == (
        None,
        "(unexpected window record at offset 3)",
    )
    as_json = render(settings("--topic", "any", "--json"), colour=False)
    assert as_json(SimpleNamespace(value=window, offset=1, headers=[])) == (
        None,
        orjson.dumps(orjson.loads(window)).decode(),
    )
