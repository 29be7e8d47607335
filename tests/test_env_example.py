"""`.env.example` lists every variable of every command once, with its real default (generated
from the settings classes), and one variable name has one meaning: every command that reads a
variable reads it with the same parser and default."""

from __future__ import annotations

from tools.reference import ENV_EXAMPLE, command_options, render


def test_the_generated_variables_are_current() -> None:
    text = ENV_EXAMPLE.read_text(encoding="utf-8")
    assert render(ENV_EXAMPLE, text) == text, ".env.example is stale: run `make docs`"


def test_one_meaning_per_variable_name() -> None:
    meanings: dict[str, set[tuple[object, ...]]] = {}
    for _, options in command_options():
        for option in options:
            meaning = (option.parse, repr(option.default), option.choices, option.is_flag)
            meanings.setdefault(option.env, set()).add(meaning)
    several = {env: found for env, found in meanings.items() if len(found) > 1}
    assert not several, f"variables with several meanings or defaults: {sorted(several)}"


def test_each_service_has_its_own_metrics_port_variable() -> None:
    by_command = {command: {o.env for o in options} for command, options in command_options()}
    assert "STOCKSENT_METRICS_PORT" not in set().union(*by_command.values())
    assert "STOCKSENT_CLASSIFIER_METRICS_PORT" in by_command["stocksent classify"]
    assert "STOCKSENT_PRODUCER_METRICS_PORT" in by_command["stocksent produce"]
    assert "STOCKSENT_LEARNER_METRICS_PORT" in by_command["stocksent learn"]
    assert "STOCKSENT_WATCHLIST" in by_command["stocksent classify"]
