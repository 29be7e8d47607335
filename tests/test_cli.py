"""The `stocksent` command: help works without loading TensorFlow."""

from __future__ import annotations

import subprocess
import sys


def test_help_lists_kafka_and_does_not_import_tensorflow() -> None:
    code = (
        "import sys; from stocksent.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "assert 'tensorflow' not in sys.modules, 'help imported tensorflow'\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert "kafka" in result.stdout


def test_kafka_status_of_unused_port_says_not_running(tmp_path) -> None:  # type: ignore[no-untyped-def]
    result = subprocess.run(
        [sys.executable, "-m", "stocksent.cli", "kafka", "status", "--port", "1"],
        capture_output=True,
        text=True,
        env={"STOCKSENT_CACHE_DIR": str(tmp_path), "PATH": ""},
        check=False,
    )
    assert result.returncode == 3
    assert "not running" in result.stdout
