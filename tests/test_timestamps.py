"""common.timestamps: the one ISO-8601 UTC format, with and without milliseconds."""

from __future__ import annotations

from common.timestamps import iso_utc, iso_utc_ms, parse_iso_utc


def test_milliseconds_are_truncated_and_end_in_z() -> None:
    assert iso_utc_ms(1_780_266_769.1239) == "2026-05-31T22:32:49.123Z"
    assert iso_utc_ms(0) == "1970-01-01T00:00:00.000Z"
    assert iso_utc(1_780_266_769.9) == "2026-05-31T22:32:49Z"


def test_parsing_reads_what_the_formatters_write_and_refuses_the_rest() -> None:
    assert parse_iso_utc(iso_utc_ms(1_780_266_769.5)) == 1_780_266_769.5
    assert parse_iso_utc("2026-05-31T22:32:49") == 1_780_266_769.0  # no offset: UTC
    assert parse_iso_utc("2026-05-31T23:32:49+01:00") == 1_780_266_769.0
    assert parse_iso_utc("yesterday") is None
