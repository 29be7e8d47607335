"""The aggregator's pure logic, in memory: durations, windows and lateness, the combiner,
window state and its restore from changelog records, the settings and bounded labels."""

from __future__ import annotations

import random
from collections import namedtuple
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry

from common.options import SettingsError, from_arguments
from stream.aggregate import wire
from stream.aggregate.combiner import add_partial, empty_partial
from stream.aggregate.durations import duration, optional_window_duration, window_duration
from stream.aggregate.labeled_input import AggregatorDeadLetterReason, epoch_ms, parse_labeled
from stream.aggregate.metrics import AggregatorMetrics
from stream.aggregate.rekey import rekey_batch
from stream.aggregate.settings import AggregatorSettings
from stream.aggregate.window_record import window_record
from stream.aggregate.window_state import PartitionState
from stream.aggregate.windows import NO_WATERMARK, View, is_past, iso_ms, window_start

TP = namedtuple("TP", "topic partition")
Record = namedtuple("Record", "value offset key headers topic partition timestamp")
VIEWS = (View("10s", 10_000), View("1m", 60_000))


def labeled(event_ms: int, symbols: list[str], label: str = "bullish", p: float = 0.75,
            author: str | None = None, version: str = "m-1") -> bytes:  # fmt: skip
    seconds, ms = divmod(event_ms, 1000)
    from time import gmtime, strftime

    return orjson.dumps({
        "id": 1, "created_at": strftime("%Y-%m-%dT%H:%M:%S", gmtime(seconds)) + f".{ms:03d}Z",
        "symbols": symbols, "body": "x", "sentiment": {"label": label, "probability": p},
        "model_version": version, "author_sentiment": author,
    })  # fmt: skip


def records(values: list[bytes], partition: int = 0) -> list[Record]:
    return [Record(v, i, None, [], "in", partition, 0) for i, v in enumerate(values)]


# ---- durations and windows ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "ms", "name"),
    [("500ms", 500, "500ms"), ("30s", 30_000, "30s"), ("5m", 300_000, "5m"),
     ("1h", 3_600_000, "1h"), ("45", 45_000, "45s"), ("0", 0, "0s")],
)  # fmt: skip
def test_durations_take_units_and_bare_seconds(text: str, ms: int, name: str) -> None:
    assert (duration(text).ms, duration(text).name) == (ms, name)


@pytest.mark.parametrize("text", ["", "1d", "-5s", "0.5ms", "abc"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        duration(text)


def test_a_window_is_whole_seconds_and_zero_disables_the_long_view() -> None:
    assert window_duration("1m").ms == 60_000
    assert optional_window_duration("0") is None
    for text in ("500ms", "1500ms", "0"):
        with pytest.raises(ValueError):
            window_duration(text)


def test_windows_tumble_and_lateness_is_end_plus_grace_at_or_below_the_watermark() -> None:
    assert window_start(60_999, 60_000) == 60_000
    assert window_start(60_000, 60_000) == 60_000
    assert not is_past(60_000, 60_000, 5_000, 124_999)
    assert is_past(60_000, 60_000, 5_000, 125_000)
    assert iso_ms(1_780_000_000_123) == "2026-05-28T20:26:40.123Z"


def test_created_at_is_read_with_or_without_zone_and_milliseconds() -> None:
    assert epoch_ms("2026-05-28T20:26:40Z") == 1_780_000_000_000
    assert epoch_ms("2026-05-28T20:26:40.123Z") == 1_780_000_000_123
    assert epoch_ms("2026-05-28T22:26:40+02:00") == 1_780_000_000_000
    assert epoch_ms("2026-05-28T20:26:40") == 1_780_000_000_000
    assert epoch_ms("yesterday") is None and epoch_ms(None) is None and epoch_ms(5) is None


@pytest.mark.parametrize(
    ("value", "reason"),
    [(None, "null_value"), (b"{", "invalid_json"), (b"[1]", "not_an_object"),
     (b'{"symbols": []}', "invalid_created_at"),
     (b'{"created_at": "2026-05-28T20:26:40Z", "symbols": "AAPL"}', "invalid_symbols"),
     (b'{"created_at": "2026-05-28T20:26:40Z", "symbols": ["A"], "sentiment": {"label": "up", '
      b'"probability": 0.5}}', "invalid_sentiment"),
     (b'{"created_at": "2026-05-28T20:26:40Z", "symbols": ["A"], "sentiment": {"label": '
      b'"bullish", "probability": 1.5}}', "invalid_sentiment"),
     (b'{"created_at": "2026-05-28T20:26:40Z", "symbols": ["A"], "sentiment": {"label": '
      b'"bullish", "probability": 0.5}, "model_version": 3}', "invalid_model_version")],
)  # fmt: skip
def test_malformed_records_say_why(value: bytes | None, reason: str) -> None:
    result = parse_labeled(value)
    assert getattr(result, "reason", None) == AggregatorDeadLetterReason(reason)


def test_symbols_are_upper_case_without_dollar_and_counted_once_per_message() -> None:
    result = parse_labeled(labeled(0, ["aapl", "$AAPL", " tsla ", "BTC.X"]))
    assert result[1] == ("AAPL", "TSLA", "BTC.X")


# ---- the re-key stage's batch ----------------------------------------------------------


def test_lateness_is_per_input_partition_and_per_view() -> None:
    grace = 5_000
    base = 1_780_000_020_000  # a multiple of 10 s and of 1 min
    batch = {
        TP("in", 0): records([
            labeled(base + 30_000, ["A"]),  # watermark -> base + 30 s
            labeled(base + 1_000, ["A"]),  # 10 s window ends base + 10 s + 5 s <= wm: late
        ]),
        TP("in", 1): records([labeled(base + 1_000, ["A"])], 1),  # its partition: on time
    }  # fmt: skip
    watermarks: dict[int, int] = {}
    out = rekey_batch(batch, watermarks, VIEWS, grace)
    assert watermarks == {0: base + 30_000, 1: base + 1_000}
    assert out.late == {"10s": 1, "1m": 0}  # the minute window is still open: counted there
    assert out.partials[("A", 10_000, base)][0] == 1
    assert out.partials[("A", 60_000, base)][0] == 3
    assert out.unusable == [] and out.consumed == 3


def test_a_record_late_for_every_view_goes_to_the_dlq_as_late() -> None:
    watermarks = {0: 1_780_000_600_000}
    out = rekey_batch({TP("in", 0): records([labeled(1_780_000_000_000, ["A"])])},
                      watermarks, VIEWS, 5_000)  # fmt: skip
    assert [u.reason for _, u in out.unusable] == [AggregatorDeadLetterReason.LATE]
    assert out.late == {"10s": 1, "1m": 1} and out.partials == {}
    assert out.advanced == {}  # the watermark did not move


def test_records_without_symbols_count_nowhere_but_move_the_watermark() -> None:
    watermarks: dict[int, int] = {}
    out = rekey_batch({TP("in", 0): records([labeled(1_000_000, [])])}, watermarks, VIEWS, 0)
    assert out.without_symbols == 1 and out.partials == {} and watermarks == {0: 1_000_000}


def test_the_combiner_sums_equal_the_plain_sums_for_any_split() -> None:
    rng = random.Random(3)
    values = [
        labeled(1_780_000_000_000 + rng.randrange(0, 120_000), rng.sample(["A", "B", "C"], 2),
                rng.choice(["bullish", "bearish"]), rng.random(),
                rng.choice([None, "bullish", "bearish"]), rng.choice(["m-1", "m-2"]))
        for _ in range(400)
    ]  # fmt: skip
    whole = rekey_batch({TP("in", 0): records(values)}, {}, VIEWS, 10**9).partials
    split: dict[Any, list[Any]] = {}
    for chunk in range(0, 400, 37):  # batches of 37 records, then merged as stage 2 does
        marks: dict[int, int] = {}
        for key, partial in rekey_batch({TP("in", 0): records(values[chunk : chunk + 37])},
                                        marks, VIEWS, 10**9).partials.items():  # fmt: skip
            add_partial(split.setdefault(key, empty_partial()), partial)
    assert split.keys() == whole.keys()
    for key, partial in whole.items():
        assert split[key][:2] + split[key][3:] == partial[:2] + partial[3:]
        assert split[key][2] == pytest.approx(partial[2], abs=1e-9)


# ---- the window stage's state ------------------------------------------------------------


def _partials(symbol: str, size: int, start: int, count: int) -> tuple[bytes, bytes]:
    partial = [count, count, 0.5 * count, 0, 0, {"m-1": count}]
    return symbol.encode(), wire.partials_value([(size, start, partial)])


def test_a_window_closes_only_when_every_input_partition_passed_end_plus_grace() -> None:
    state = PartitionState()
    state.apply(*_partials("A", 10_000, 0, 2), grace_ms=1_000, inputs=2)
    state.apply(None, wire.marker_value({0: 50_000}), 1_000, 2)
    assert state.low_watermark(2) == NO_WATERMARK
    assert state.take_final(1_000, 2) == []  # partition 1 has said nothing yet
    state.apply(None, wire.marker_value({1: 10_999}), 1_000, 2)
    assert state.take_final(1_000, 2) == []
    state.apply(None, wire.marker_value({1: 11_000}), 1_000, 2)
    final = state.take_final(1_000, 2)
    assert [(k, p[0]) for k, p in final] == [(("A", 10_000, 0), 2)]
    assert state.windows == {}


def test_partials_for_a_final_window_are_not_counted_again() -> None:
    state = PartitionState()
    state.apply(None, wire.marker_value({0: 100_000}), 0, 1)
    state.apply(*_partials("A", 10_000, 0, 3), grace_ms=0, inputs=1)
    assert state.windows == {} and state.stale == 3


def test_state_restored_from_its_changelog_records_is_the_same_state() -> None:
    state = PartitionState()
    changelog: list[tuple[bytes, bytes | None]] = []
    for step in range(5):
        state.apply(*_partials("A", 10_000, step * 10_000, 1), grace_ms=0, inputs=1)
        state.apply(*_partials("B", 60_000, 0, 2), grace_ms=0, inputs=1)
        state.apply(None, wire.marker_value({0: step * 10_000 + 5_000}), 0, 1)
        final = state.take_final(0, 1)
        changelog += state.changes(final, next_offset=10 * (step + 1))
    compacted = dict(changelog)  # what compaction keeps: the last value per key
    for log in (changelog, list(compacted.items())):
        restored = PartitionState()
        for key, value in log:
            restored.restore(key, value)
        assert restored.windows == state.windows
        assert restored.watermarks == state.watermarks == {0: 45_000}
        assert restored.applied_offset == 50
    assert ("A", 10_000, 0) not in state.windows and state.windows[("B", 60_000, 0)][0] == 10


def test_the_output_record_has_the_figures_of_its_partial() -> None:
    record = window_record(("AAPL", 60_000, 1_780_000_020_000),
                           [4, 3, 2.0, 2, 1, {"m-2": 1, "m-1": 3}], final=True)  # fmt: skip
    assert record == {
        "symbol": "AAPL", "window_start": "2026-05-28T20:27:00.000Z",
        "window_end": "2026-05-28T20:28:00.000Z", "window_seconds": 60, "count": 4,
        "bullish": 3, "bullish_share": 0.75, "mean_probability": 0.5, "author_tagged": 2,
        "author_agree": 1, "model_versions": {"m-1": 3, "m-2": 1}, "final": True,
    }  # fmt: skip


# ---- settings and metrics -------------------------------------------------------------------


def test_options_read_stocksent_aggregator_variables() -> None:
    env = {"STOCKSENT_AGGREGATOR_WINDOW": "30s", "STOCKSENT_AGGREGATOR_LONG_WINDOW": "0",
           "STOCKSENT_AGGREGATOR_GRACE": "500ms", "STOCKSENT_BOOTSTRAP_SERVERS": "k:9092"}  # fmt: skip
    settings = from_arguments(AggregatorSettings, {}, environ=env)
    assert settings.views == (View("30s", 30_000),)
    assert settings.grace_ms == 500 and settings.kafka.bootstrap_servers == "k:9092"
    assert settings.repartition_topic == "stocktwits.sentiment.by-symbol.repartition"


@pytest.mark.parametrize(
    ("given", "named"),
    [({"window": "1500ms"}, "--window"), ({"long_window": "30s"}, "--long-window"),
     ({"processing_guarantee": "twice"}, "--processing-guarantee")],
)  # fmt: skip
def test_bad_settings_name_the_option(given: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        from_arguments(AggregatorSettings, given, environ={})


def test_symbol_gauges_keep_the_watchlist_and_top_n_and_drop_the_rest() -> None:
    registry = CollectorRegistry()
    metrics = AggregatorMetrics(registry, ["1m"], watchlist=["SPY"], top=2)
    gauges = metrics.symbols
    for symbol, count in {"A": 10, "B": 5, "C": 1, "SPY": 1}.items():
        gauges.final("1m", 60_000, symbol, count, 0.5)
    gauges.publish()

    def shown() -> set[str]:
        name = "stocksent_aggregator_symbol_messages"
        return {s.labels["symbol"] for f in registry.collect() for s in f.samples if s.name == name}

    assert shown() == {"A", "B", "SPY"}
    gauges.final("1m", 120_000, "C", 7, 0.5)  # a newer window: only C in it so far
    gauges.publish()
    assert shown() == {"C"}


def test_the_output_record_is_valid_against_its_schema() -> None:
    import jsonschema

    from stream.aggregate.window_record import schema

    validator = jsonschema.Draft202012Validator(schema())
    record = window_record(("BTC.X", 3_600_000, 1_780_000_000_000 // 3_600_000 * 3_600_000),
                           [1, 0, 0.25, 0, 0, {"m-1": 1}], final=False)  # fmt: skip
    validator.validate(record)
    with pytest.raises(jsonschema.ValidationError):
        validator.validate({**record, "symbol": "$btc.x"})
