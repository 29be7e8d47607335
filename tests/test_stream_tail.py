"""`stocksent tail` rows: labeled records, dead letters (--dlq) and JSON lines (--json)."""

from __future__ import annotations

import orjson

from stream.tail import dlq_json, format_dlq_row, format_row, paint

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
