"""The reference tables of docs/REFERENCE.md, generated from the definitions themselves: every
option (flag, environment variable, default) and every metric (type, labels, help). `make
docs` rewrites them; a test fails when the page is out of date, so the two never drift."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from stocksent.kafka_settings import CONNECTION_OPTIONS
from stocksent.options import Option

README = Path(__file__).resolve().parent.parent / "README.md"
REFERENCE = README.parent / "docs" / "REFERENCE.md"

# (command, module, attribute holding its Option tuple)
COMMANDS: tuple[tuple[str, str, str], ...] = (
    ("stocksent classify", "stream.settings", "OPTIONS"),
    ("stocksent aggregate", "stream.aggregate.settings", "OPTIONS"),
    ("stocksent learn", "stream.learner_cli", "OPTIONS"),
    ("stocksent produce", "producers.cli", "PRODUCER_OPTIONS"),
    ("stocksent run", "stocksent.run", "OPTIONS"),
    ("stocksent tail", "stream.tail", "OPTIONS"),
    ("stocksent topics create", "stocksent.topics_cli", "OPTIONS"),
)


def _default(option: Option) -> str:
    if option.secret or option.default in (None, "", ()):
        return ""
    if option.is_flag:
        return "off"
    if isinstance(option.default, tuple):
        return "`" + ",".join(map(str, option.default)) + "`"
    return f"`{option.default}`"


def options_table(options: Sequence[Option]) -> str:
    """One Markdown row per option."""
    rows = ["| flag | environment variable | default | meaning |", "| --- | --- | --- | --- |"]
    for option in options:
        meaning = option.help.replace("|", "\\|")
        if option.choices:
            meaning += " (" + ", ".join(f"`{c}`" for c in option.choices if c) + ")"
        rows.append(f"| `{option.flag}` | `{option.env}` | {_default(option)} | {meaning} |")
    return "\n".join(rows)


def configuration_reference() -> str:
    """Connection options once, then each command's own options."""
    parts = [
        "#### Kafka connection (every command that talks to Kafka)",
        "",
        options_table(CONNECTION_OPTIONS),
    ]
    shared = {option.name for option in CONNECTION_OPTIONS}
    for command, module, attribute in COMMANDS:
        options = getattr(importlib.import_module(module), attribute)
        own = [option for option in options if option.name not in shared]
        parts += ["", f"#### `{command}`", "", options_table(own)]
    return "\n".join(parts) + "\n"


def _metric_rows(registry: Any) -> list[str]:
    rows = []
    collectors = sorted(set(registry._collector_to_names), key=lambda c: c._name)
    for collector in collectors:
        kind = collector._type
        name = collector._name + ("_total" if kind == "counter" else "")
        labels = ", ".join(f"`{label}`" for label in collector._labelnames)
        rows.append(f"| `{name}` | {kind} | {labels} | {collector._documentation} |")
    return rows


def metrics_reference() -> str:
    """Every metric of the classifier, the producer, the learner and the aggregator, from
    their registries."""
    from prometheus_client import CollectorRegistry

    from producers.metrics import ProducerMetrics
    from stream.aggregate.metrics import AggregatorMetrics
    from stream.learner_metrics import LearnerMetrics
    from stream.metrics import ClassifierMetrics

    header = ["| metric | type | labels | meaning |", "| --- | --- | --- | --- |"]
    classifier = CollectorRegistry()
    ClassifierMetrics(classifier)
    producer = CollectorRegistry()
    ProducerMetrics(producer)
    learner = CollectorRegistry()
    LearnerMetrics(learner)
    aggregator = CollectorRegistry()
    AggregatorMetrics(aggregator, ["60s"], (), 0)
    return (
        "\n".join(
            [
                "Classifier (`/metrics` on port 9300):",
                "",
                *header,
                *_metric_rows(classifier),
                "",
                "Producer (`/metrics` on port 9301):",
                "",
                *header,
                *_metric_rows(producer),
                "",
                "Learner (`/metrics` on port 9302):",
                "",
                *header,
                *_metric_rows(learner),
                "",
                "Aggregator (`/metrics` on port 9303):",
                "",
                *header,
                *_metric_rows(aggregator),
            ]
        )
        + "\n"
    )


SECTIONS = {"config": configuration_reference, "metrics": metrics_reference}


def render(text: str) -> str:
    """Page text with every generated section replaced by its current content."""
    for key, build in SECTIONS.items():
        start, end = f"<!-- {key}:start -->", f"<!-- {key}:end -->"
        if start not in text or end not in text:
            raise ValueError(f"{REFERENCE.name} has no {start} ... {end} markers")
        head, rest = text.split(start, 1)
        _, tail = rest.split(end, 1)
        text = f"{head}{start}\n{build()}{end}{tail}"
    return text


def main(argv: list[str] | None = None) -> int:
    """`python -m stocksent.reference [--check]`: rewrite (or check) docs/REFERENCE.md."""
    parser = argparse.ArgumentParser(prog="python -m stocksent.reference", description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail when docs/REFERENCE.md is stale")
    args = parser.parse_args(argv)
    current = REFERENCE.read_text(encoding="utf-8")
    fresh = render(current)
    if args.check:
        if fresh != current:
            print("docs/REFERENCE.md tables are stale: run `make docs`", file=sys.stderr)
            return 1
        return 0
    REFERENCE.write_text(fresh, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
