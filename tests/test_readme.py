"""The generated reference tables match the code, and the README's output example fits the
schema."""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema

from common.checkout import README
from tools.reference import SECTIONS, render


def test_generated_tables_are_current() -> None:
    for path in SECTIONS:  # docs/REFERENCE.md, README.md, .env.example
        text = path.read_text(encoding="utf-8")
        assert render(path, text) == text, f"{path.name} is stale: run `make docs`"


def _example(marker: str) -> Any:
    text = README.read_text(encoding="utf-8")
    match = re.search(rf"<!-- {marker} -->\s*```json\n(.*?)```", text, re.S)
    assert match, f"README.md has no {marker}"
    return json.loads(match.group(1))


def test_output_example_is_valid_against_the_schema() -> None:
    from stream.sentiment_record import schema

    jsonschema.validate(_example("output-example"), schema())


def test_window_example_is_valid_and_its_share_is_its_figures() -> None:
    from stream.aggregate.window_record import schema

    window = _example("window-example")
    jsonschema.validate(window, schema())
    assert window["bullish_share"] == window["bullish"] / window["count"]
    assert sum(window["model_versions"].values()) == window["count"]


def test_the_dead_letter_section_lists_every_reason_with_an_example() -> None:
    from stream.decode import DeadLetterReason

    text = README.read_text(encoding="utf-8")
    table = text.split("<!-- dlq-reasons -->", 1)[1].split("\n\n", 1)[0]
    rows = {
        line.split("|")[1].strip().strip("`"): line.split("|")[3].strip()
        for line in table.strip().splitlines()[2:]
    }
    assert set(rows) == {reason.value for reason in DeadLetterReason}
    assert all(rows.values()), "a reason without an example"
