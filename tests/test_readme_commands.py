"""The README's commands still run: every `make` target and variable it names exists in the
Makefile, every `stocksent` command and flag it shows is one the command accepts, and every
file it points at is in the repo. (The sample replay it shows runs end to end in
tests/integration/test_sample_replay.py.)"""

from __future__ import annotations

import argparse
import importlib
import re
import shlex
import shutil
import subprocess

import pytest

from common.checkout import README
from common.options import add_options, options_of, resolve
from stocksent.cli import DEBUG_FLAG, SUBCOMMANDS
from stocksent.service_process import REPO_ROOT
from tools.reference import COMMANDS

TEXT = README.read_text(encoding="utf-8")
MAKEFILE = (REPO_ROOT / "Makefile").read_text(encoding="utf-8")
KAFKA_FLAGS = {"--port", "--kafka-version", "--wipe"}


def _shell_lines() -> list[str]:
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", TEXT, re.S):
        for line in block.splitlines():
            line = line.split("  #", 1)[0].strip()
            if line:
                lines.append(line)
    lines += re.findall(r"`((?:\.venv/bin/)?stocksent [^`]+|make [a-z][^`]*)`", TEXT)
    return lines


def _accepted_flags(words: list[str]) -> set[str] | None:
    """The flags `stocksent WORDS...` accepts, or None when the README test does not know."""
    if words[0] == "kafka":
        return KAFKA_FLAGS
    for command, module, name in COMMANDS:
        if command.split()[1:] == words[: len(command.split()) - 1]:
            settings_class = getattr(importlib.import_module(module), name)
            return {option.flag for option in options_of(settings_class)}
    return None


STOCKSENT_LINES = [
    line
    for line in _shell_lines()
    if re.match(r"(\.venv/bin/)?stocksent [a-z]", line)  # not the `stocksent COMMAND:` pattern
]
MAKE_LINES = [line for line in _shell_lines() if line.startswith("make ")]


def test_the_readme_shows_commands() -> None:
    assert len(STOCKSENT_LINES) >= 4 and len(MAKE_LINES) >= 5


STORE_FLAGS = ("--model-store", "--store")


@pytest.fixture(scope="module")
def model_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A model store like the one the README's `models init` line creates."""
    from model.predictor import PRETRAINED_DIR
    from model.store import ModelStore

    return str(ModelStore.init(tmp_path_factory.mktemp("readme") / "store", PRETRAINED_DIR).root)


@pytest.mark.parametrize("line", STOCKSENT_LINES)
def test_stocksent_commands_and_flags_exist(line: str, model_store: str) -> None:
    words = shlex.split(line)[1:]
    # the README's store (made by its `models init` line) stands for the one made here
    words = [
        model_store if i > 0 and words[i - 1] in STORE_FLAGS else word
        for i, word in enumerate(words)
    ]
    assert words[0] in SUBCOMMANDS, line
    accepted = _accepted_flags(words)
    if accepted is None:
        return
    for flag in (w.split("=", 1)[0] for w in words if w.startswith("--")):
        assert flag in accepted | {DEBUG_FLAG, "--help"}, f"{line}: {flag} is not an option"
    for command, module, name in COMMANDS:  # and their values parse
        if command.split()[1:] == words[: len(command.split()) - 1] and words[0] != "kafka":
            settings_class = getattr(importlib.import_module(module), name)
            parser = argparse.ArgumentParser(exit_on_error=False)
            add_options(parser, options_of(settings_class))
            given = [w for w in words[len(command.split()) - 1 :] if w != DEBUG_FLAG]
            args, _ = parser.parse_known_args(given)  # an action (`models list`) is positional
            resolve(args, options_of(settings_class), environ={})


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
@pytest.mark.parametrize("line", sorted(set(MAKE_LINES)))
def test_make_lines_expand(line: str) -> None:
    # a dry run (-n) expands the recipe without running it; VENV elsewhere, so the recipe of
    # `install` is printed, never run against a real environment
    result = subprocess.run(
        [*shlex.split(line), "-n", "VENV=/nonexistent/venv"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("line", MAKE_LINES)
def test_make_targets_and_variables_exist(line: str) -> None:
    for word in shlex.split(line)[1:]:
        if "=" in word:
            variable, _ = word.split("=", 1)
            assert f"$({variable})" in MAKEFILE, f"{line}: the Makefile does not read {variable}"
        elif not word.startswith("-") and word != "...":
            assert re.search(rf"^{re.escape(word)}:", MAKEFILE, re.M), f"{line}: no target {word}"


def test_files_and_links_exist() -> None:
    paths = set(re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", TEXT))
    paths |= set(re.findall(r"\b(samples/[\w./-]+\.\w+)", TEXT))
    assert "samples/stocktwits-messages.jsonl" in paths
    missing = sorted(p for p in paths if not (REPO_ROOT / p).exists())
    assert not missing, f"README points at files that are not there: {missing}"
