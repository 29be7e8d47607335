"""Replay (API response JSON, JSONL, CSV) and synthetic sources, and the rate pacer."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import orjson
import pytest

from producers.feed import Pacer
from producers.messages import RawRecord, created_at_epoch, message_id
from producers.replay import ReplayError, read_messages, stable_id, wrap_text
from producers.synthetic import SyntheticMessages

SAMPLES = {
    "symbol_AAPL_2019-03.json": 30,
    "messages_only_2019-10.json": 30,
    "user_170_2013.json": 5,
    "conversation_2012.json": 2,
    "symbol_TSLA_2026-05_messages.jsonl": 90,
}


@pytest.mark.parametrize(("name", "count"), SAMPLES.items())
def test_every_shared_sample_is_read_as_saved(samples_dir: Path, name: str, count: int) -> None:
    path = samples_dir / name
    read = list(read_messages(path))
    assert len(read) == count
    if path.suffix == ".jsonl":
        expected = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    else:
        expected = json.loads(path.read_text())["messages"]
    assert read == expected  # every field kept, unknown ones included
    assert all(message_id(m) is not None and created_at_epoch(m) is not None for m in read)


def test_2026_schema_fields_survive(samples_dir: Path) -> None:
    first = next(read_messages(samples_dir / "symbol_TSLA_2026-05_messages.jsonl"))
    assert {"tokenized_body", "prices", "discussion"} <= set(first)


def test_csv_rows_become_stocktwits_shaped_messages(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_text(
        'id,message,sentiment\n1,"$SPY calls & $aapl puts, <3",bullish\n2,$QQQ dumping,bearish\n'
        "3,no tag here,\n4,   ,bullish\n"
    )
    rows = list(read_messages(path, clock=lambda: 1_700_000_000.0))
    assert len(rows) == 3  # the blank message is skipped
    first = rows[0]
    assert first["body"] == "$SPY calls &amp; $aapl puts, &lt;3"  # escaped as the API does
    assert [s["symbol"] for s in first["symbols"]] == ["SPY", "AAPL"]
    assert first["entities"] == {"sentiment": {"basic": "Bullish"}}
    assert rows[1]["entities"]["sentiment"] == {"basic": "Bearish"}
    assert rows[2]["entities"]["sentiment"] is None
    assert first["created_at"] == "2023-11-14T22:13:20Z"
    # The id is derived from the text: stable across runs, different between texts.
    assert first["id"] == stable_id("$SPY calls & $aapl puts, <3")
    assert [m["id"] for m in read_messages(path)] == [m["id"] for m in rows]
    assert len({m["id"] for m in rows}) == 3
    assert all(0 < m["id"] < 2**63 for m in rows)


def test_csv_keeps_a_given_created_at() -> None:
    message = wrap_text("hi", created_at="2017-01-03T14:00:00Z", now=0)
    assert message["created_at"] == "2017-01-03T14:00:00Z"


def test_gzipped_csv_of_the_data_set(shared_data_dir: Path) -> None:
    rows = list(read_messages(shared_data_dir / "test.csv.gz"))
    assert len(rows) == 9621
    assert len({m["id"] for m in rows}) == 9621  # the canonical split has no duplicate texts
    assert {m["entities"]["sentiment"]["basic"] for m in rows} == {"Bullish", "Bearish"}


def test_jsonl_gz_and_json_array(tmp_path: Path) -> None:
    gz = tmp_path / "m.jsonl.gz"
    with gzip.open(gz, "wt") as handle:
        handle.write('{"id": 1, "x": [1]}\n\n{"id": 2}\n')
    assert [m["id"] for m in read_messages(gz)] == [1, 2]
    array = tmp_path / "a.json"
    array.write_text('[{"id": 3}]')
    assert list(read_messages(array)) == [{"id": 3}]


def test_jsonl_lines_that_are_not_objects_pass_through_raw(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b'{"id": 1}\n{"id": \n[1, 2]\n\n{"id": "x1", "body": "hi"}\n')
    read = list(read_messages(path))
    assert read[0] == {"id": 1}
    assert read[1] == RawRecord(b'{"id": ', f"{path}:2")
    assert read[2] == RawRecord(b"[1, 2]", f"{path}:3")
    assert read[3] == {"id": "x1", "body": "hi"}  # the classifier judges the id, not the replay


@pytest.mark.parametrize(
    ("name", "content", "error"),
    [
        ("bad.json", '{"messages": 3}', "expected an API response"),
        ("bad.csv", "text,label\nhello,bullish\n", "no `message` column"),
        ("bad.txt", "x", "unknown replay format"),
    ],
)
def test_bad_replay_files_name_the_problem(
    tmp_path: Path, name: str, content: str, error: str
) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(ReplayError, match=error.replace("`", ".")):
        list(read_messages(path))


def test_synthetic_messages_are_stocktwits_shaped_and_unique() -> None:
    generated = [
        m for _, m in zip(range(500), SyntheticMessages(seed=7, start_id=10), strict=False)
    ]
    ids = [m["id"] for m in generated]
    assert ids == list(range(10, 510))
    tags = [m["entities"]["sentiment"] for m in generated]
    assert {t["basic"] for t in tags if t} == {"Bullish", "Bearish"}
    assert 0.1 < sum(1 for t in tags if t) / len(tags) < 0.5  # some, not all, are tagged
    for message in generated:
        assert message["body"].startswith("$") or "$" in message["body"]
        assert all(f"${s['symbol']}" in message["body"] for s in message["symbols"])
        assert created_at_epoch(message) is not None
    # The seed makes the texts reproducible.
    again = [m["body"] for _, m in zip(range(50), SyntheticMessages(seed=7), strict=False)]
    assert again == [m["body"] for m in generated[:50]]


def test_pacer_spaces_events_at_the_rate() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    pacer = Pacer(4.0, clock=lambda: now[0], sleep=sleep)
    for _ in range(9):
        pacer.wait()
    assert now[0] == pytest.approx(2.0)  # 9 events at 4/s: the last one is due at t = 2 s
    unlimited = Pacer(0.0, clock=lambda: now[0], sleep=sleep)
    before = len(slept)
    for _ in range(100):
        unlimited.wait()
    assert len(slept) == before


def test_live_state_defaults_to_the_state_directory_not_the_working_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from common.options import from_arguments
    from producers.cli import ProducerSettings
    from producers.state import default_state_path

    monkeypatch.setenv("STOCKSENT_STATE_DIR", str(tmp_path / "state"))
    settings = from_arguments(ProducerSettings, {"symbols": "SPY"}, environ={})
    assert settings.state == default_state_path() == tmp_path / "state" / "producer-state.json"
    monkeypatch.delenv("STOCKSENT_STATE_DIR")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert default_state_path() == tmp_path / "xdg" / "stocksent" / "producer-state.json"


@pytest.mark.parametrize(
    ("value", "expected"),
    [(123, 123), ("123", None), (True, None), (1.0, None), (0, None), (2**63, None)],
)
def test_the_producer_keys_by_the_classifier_id_rule(value: object, expected: int | None) -> None:
    from producers.messages import message_id
    from stream.decode import DeadLetterReason, Rejection, decode

    assert message_id({"id": value}) == expected
    decoded = decode(orjson.dumps({"id": value, "body": "calls"}), 10_000)
    # one rule: what the producer keys by is exactly what the classifier accepts
    assert isinstance(decoded, Rejection) == (expected is None)
    if isinstance(decoded, Rejection):
        assert decoded.reason in (DeadLetterReason.ID_NOT_INTEGER, DeadLetterReason.ID_OUT_OF_RANGE)
