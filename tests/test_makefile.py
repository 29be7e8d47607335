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
