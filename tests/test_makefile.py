"""`make help` shows values, not Makefile variables (it printed `$(KAFKA_PORT)` literally)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from stocksent.service_process import REPO_ROOT


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_help_shows_the_port_not_a_variable() -> None:
    shown = subprocess.run(
        ["make", "--no-print-directory", "-s", "help", "KAFKA_PORT=19092"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "127.0.0.1:19092" in shown
    assert "$(" not in shown


def test_every_command_a_target_runs_exists_where_make_runs_it() -> None:
    """`$(BIN)/stocksent X` must be a subcommand of the installed CLI (bench/ and tools/ are
    not installed, so `stocksent bench` once failed), `$(BIN)/python -m M` a module here."""
    import importlib.util
    import re

    from stocksent.cli import SUBCOMMANDS

    makefile = (REPO_ROOT / "Makefile").read_text()
    installed = {"common", "model", "producers", "stream", "stocksent"}
    commands = re.findall(r"\$\(BIN\)/stocksent ([a-z-]+)", makefile)
    assert commands, "no stocksent command found in the Makefile"
    for command in commands:
        assert command in SUBCOMMANDS, command
        assert SUBCOMMANDS[command][0].split(".")[0] in installed, command
    for module in re.findall(r"\$\(BIN\)/python -m ([\w.]+)", makefile):
        if module in ("pip", "venv"):
            continue
        assert importlib.util.find_spec(module) is not None, module
        assert (REPO_ROOT / (module.replace(".", "/") + ".py")).is_file(), module
