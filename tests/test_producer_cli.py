"""`stocksent produce` options: flags and environment, validation, the printed configuration."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.options import describe, parse_settings
from producers.cli import DESCRIPTION, ProducerSettings, main
from stocksent.cli import main as stocksent_main


def settings(argv: list[str], env: dict[str, str] | None = None) -> ProducerSettings:
    return parse_settings(ProducerSettings, argv, "p", DESCRIPTION, env or {})


def test_defaults() -> None:
    values = settings(["--synthetic"])
    assert values.topic == "stocktwits.messages"
    assert values.api_base_url == "https://api.stocktwits.com/api/2"
    assert values.requests_per_hour == 200
    assert values.backfill_pages == 1
    assert values.metrics_port == 9301 and values.metrics_host == "127.0.0.1"
    assert values.once is False and values.synthetic is True


def test_every_option_reads_its_environment_variable_and_the_flag_wins() -> None:
    env = {"STOCKSENT_SYMBOLS": "spy,$aapl,SPY", "STOCKSENT_REQUESTS_PER_HOUR": "60"}
    assert settings([], env).symbols == ("SPY", "AAPL")
    assert settings([], env).requests_per_hour == 60
    assert settings(["--requests-per-hour", "30"], env).requests_per_hour == 30
    assert settings([], {**env, "STOCKSENT_ONCE": "true"}).once is True
    assert settings(["--synthetic"], {"STOCKSENT_INPUT_TOPIC": "in"}).topic == "in"
    assert settings(["--synthetic"], {"STOCKSENT_PRODUCER_METRICS_PORT": "9"}).metrics_port == 9


def test_token_is_masked_in_the_printed_configuration() -> None:
    values = settings(["--synthetic"], {"STOCKSENT_STOCKTWITS_TOKEN": "abc-secret-123"})
    shown = describe(values)
    assert "abc-secret-123" not in shown and "stocktwits_token = ********" in shown
    assert "abc-secret-123" not in repr(values)


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (["--requests-per-hour", "0"], "--requests-per-hour: '0' is not valid"),
        (["--symbols", "S P Y"], "is not a ticker symbol"),
        ([], "--symbols (STOCKSENT_SYMBOLS) is required"),
        (["--synthetic", "--once"], "--once applies to the live source only"),
        (["--symbols", "SPY", "--loop"], "--loop applies to --replay and --synthetic only"),
        (["--rate", "-1", "--synthetic"], "--rate: '-1' is not valid"),
        (["--replay", "/no/such/file"], "--replay: '/no/such/file' is not valid: no such file"),
    ],
)
def test_bad_configuration_exits_2_naming_the_option(
    argv: list[str], error: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STOCKSENT_SYMBOLS", raising=False)
    assert stocksent_main(["produce", *argv]) == 2
    assert error in capsys.readouterr().err


def test_replay_and_synthetic_are_exclusive(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "m.jsonl"
    path.write_text("{}\n")
    assert stocksent_main(["produce", "--replay", str(path), "--synthetic"]) == 2
    assert "choose one" in capsys.readouterr().err


def test_synthetic_accepts_loop_as_stocksent_run_passes_it() -> None:
    assert settings(["--synthetic", "--rate", "5", "--loop"]).loop


def test_help_lists_flags_with_env_vars(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"], "stocksent produce")
    out = capsys.readouterr().out
    for flag in ("--symbols", "--once", "--replay", "--synthetic", "--rate", "--count", "--state"):
        assert flag in out
    assert "STOCKSENT_REQUESTS_PER_HOUR" in out
