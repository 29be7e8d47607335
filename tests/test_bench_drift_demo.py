"""The drift demo's data preparation: time order, the API shape of streamed messages."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
from pathlib import Path

import orjson

from bench.drift_demo import FIRST_ID, api_message, read_rows, write_base_data, write_replay


def _split(directory: Path, name: str, rows: list[tuple[int, str, str]]) -> None:
    with gzip.open(directory / f"{name}.csv.gz", "wt", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "message", "sentiment"])
        writer.writerows(rows)


def test_rows_come_back_in_id_order_with_their_split(tmp_path: Path) -> None:
    _split(tmp_path, "train", [(5, "$SPY up", "bullish"), (1, "$SPY down", "Bearish")])
    _split(tmp_path, "val", [(3, "flat", "bullish")])
    _split(tmp_path, "test", [(2, "calls", "bullish"), (4, "puts", "bearish")])
    rows = read_rows(tmp_path)
    assert [r["id"] for r in rows] == [1, 2, 3, 4, 5]
    assert [r["split"] for r in rows] == ["train", "test", "val", "test", "train"]
    assert rows[0]["label"] == "bearish"
    write_base_data(rows[:3], tmp_path / "base")
    with (tmp_path / "base" / "test.csv").open() as handle:
        assert list(csv.DictReader(handle)) == [
            {"id": "2", "message": "calls", "sentiment": "bullish"}
        ]


def test_streamed_messages_carry_the_tag_and_grow_in_time(tmp_path: Path) -> None:
    rows = [
        {"id": i, "text": f"$SPY msg {i}", "label": "bullish" if i % 2 else "bearish"}
        for i in range(10)
    ]
    message = api_message(rows[1], dt.datetime(2017, 3, 1, tzinfo=dt.UTC))
    assert message["id"] == FIRST_ID + 1
    assert message["entities"]["sentiment"] == {"basic": "Bullish"}
    assert message["created_at"] == "2017-03-01T00:00:00Z"
    replay = tmp_path / "today.jsonl"
    write_replay(rows[5:], 5, 10, replay)
    lines = [orjson.loads(line) for line in replay.read_bytes().splitlines()]
    assert [m["id"] - FIRST_ID for m in lines] == [5, 6, 7, 8, 9]
    times = [m["created_at"] for m in lines]
    assert times == sorted(times) and times[0].startswith("2017-07")
