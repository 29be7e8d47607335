"""Typed command-line options that also read `STOCKSENT_<NAME>` environment variables.

Every option has a flag and an environment variable; the flag wins, then the environment,
then the default. Values are validated once, with an error naming the flag, the variable
and the bad value. Secrets are held in `Secret`, which never prints its value.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ENV_PREFIX = "STOCKSENT_"


class SettingsError(ValueError):
    """A setting has a value that cannot be used; the message names it."""


class Secret:
    """A string that never shows itself in logs, reprs or the printed configuration."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret value, for handing to a client library only."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class Option:
    """One setting: `name` in snake_case gives `--name-with-dashes` and `STOCKSENT_NAME`."""

    name: str
    parse: Callable[[str], Any]
    default: Any
    help: str
    secret: bool = False
    choices: tuple[str, ...] | None = None
    is_flag: bool = False

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name.upper()


# ---- parsers: each raises ValueError with a short reason --------------------------------


def positive_int(text: str) -> int:
    """An integer >= 1."""
    value = int(text)
    if value < 1:
        raise ValueError("must be >= 1")
    return value


def non_negative_int(text: str) -> int:
    """An integer >= 0."""
    value = int(text)
    if value < 0:
        raise ValueError("must be >= 0")
    return value


def port(text: str) -> int:
    """A TCP port, 0..65535 (0 disables the endpoint where the option says so)."""
    value = int(text)
    if not 0 <= value <= 65535:
        raise ValueError("must be a port between 0 and 65535")
    return value


def positive_float(text: str) -> float:
    """A number > 0."""
    value = float(text)
    if not value > 0:
        raise ValueError("must be > 0")
    return value


def boolean(text: str) -> bool:
    """true/false, yes/no, 1/0, on/off."""
    lowered = text.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError("must be true or false")


def text(value: str) -> str:
    """Any string."""
    return value


def non_empty_text(value: str) -> str:
    """A string that is not blank."""
    if not value.strip():
        raise ValueError("must not be empty")
    return value.strip()


def optional_path(value: str) -> Path | None:
    """A path, or nothing when empty."""
    return Path(value) if value.strip() else None


def existing_file(value: str) -> Path | None:
    """A path to a readable file, or nothing when empty."""
    if not value.strip():
        return None
    path = Path(value)
    if not path.is_file():
        raise ValueError("no such file")
    return path


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def log_level(value: str) -> str:
    """A logging level name, any case."""
    upper = value.strip().upper()
    if upper not in LOG_LEVELS:
        raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
    return upper


LOG_LEVEL_OPTION = Option("log_level", log_level, "INFO", "DEBUG, INFO, WARNING or ERROR")
"""The one `--log-level` option every service shares."""


def comma_list(value: str) -> tuple[str, ...]:
    """A comma-separated list, blanks dropped."""
    return tuple(part.strip() for part in value.split(",") if part.strip())


def add_options(parser: argparse.ArgumentParser, options: Iterable[Option]) -> None:
    """Adds one flag per option; defaults are resolved later by `resolve`."""
    for option in options:
        help_text = f"{option.help} [env {option.env}; default {_show_default(option)}]"
        if option.is_flag:
            parser.add_argument(
                option.flag,
                dest=option.name,
                action="store_const",
                const="true",
                default=None,
                help=help_text,
            )
        else:
            parser.add_argument(
                option.flag,
                dest=option.name,
                default=None,
                metavar=option.name.upper(),
                choices=option.choices,
                help=help_text,
            )


def resolve(
    args: argparse.Namespace | Mapping[str, Any],
    options: Sequence[Option],
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Typed values: flag, else environment variable, else default; raises SettingsError."""
    env = os.environ if environ is None else environ
    given = vars(args) if isinstance(args, argparse.Namespace) else dict(args)
    values: dict[str, Any] = {}
    for option in options:
        raw = given.get(option.name)
        origin = option.flag
        if raw is None and option.env in env:
            raw, origin = env[option.env], option.env
        if raw is None:
            values[option.name] = option.default
            continue
        if isinstance(raw, str):
            if option.choices is not None and raw not in option.choices:
                raise SettingsError(f"{origin}: {raw!r} is not one of {', '.join(option.choices)}")
            try:
                value = option.parse(raw)
            except ValueError as err:
                shown = "********" if option.secret else repr(raw)
                raise SettingsError(f"{origin}: {shown} is not valid: {_reason(err)}") from None
        else:
            value = raw
        values[option.name] = Secret(value) if option.secret and isinstance(value, str) else value
    return values


def _reason(err: ValueError) -> str:
    # int('abc') and float('abc') explain themselves in Python's words, not the user's
    message = str(err)
    if message.startswith("invalid literal for int()"):
        return "must be a whole number"
    if message.startswith("could not convert string to float"):
        return "must be a number"
    return message


def describe(values: Mapping[str, Any], options: Sequence[Option]) -> str:
    """The effective configuration, one `name = value` a line, secrets masked."""
    lines = []
    for option in options:
        value = values.get(option.name)
        if option.secret and value:
            shown = "********"
        elif isinstance(value, tuple):
            shown = ",".join(map(str, value))
        else:
            shown = "" if value is None else str(value)
        lines.append(f"  {option.name} = {shown}")
    return "\n".join(lines)


def _show_default(option: Option) -> str:
    if option.secret:
        return "unset"
    if isinstance(option.default, tuple):
        return ",".join(option.default) or "empty"
    return "unset" if option.default in (None, "") else str(option.default)
