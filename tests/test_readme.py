"""The generated reference tables match the code, and the README's output example fits the
schema."""

from __future__ import annotations

import json
import re

import jsonschema

from stocksent.reference import README, REFERENCE, render


def test_reference_tables_are_current() -> None:
    text = REFERENCE.read_text(encoding="utf-8")
    assert render(text) == text, "docs/REFERENCE.md tables are stale: run `make docs`"


def test_output_example_is_valid_against_the_schema() -> None:
    from stream.sentiment_record import schema

    text = README.read_text(encoding="utf-8")
    match = re.search(r"<!-- output-example -->\s*```json\n(.*?)```", text, re.S)
    assert match, "README.md has no output example"
    jsonschema.validate(json.loads(match.group(1)), schema())
