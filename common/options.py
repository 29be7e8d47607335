"""Typed settings of each command, declared once, read from flags and `STOCKSENT_*` variables.

A command's settings are a frozen dataclass whose fields are declared with `setting(...)`
(parser, default, help and, where a field's name is not the name users see, the flag or
environment variable). From that one declaration come the command's flags, the variables it
reads, the printed effective configuration, `.env.example` and the reference tables
(`python -m tools.reference`). The flag wins, then the environment, then the default.
Each value is parsed once, with an error naming the flag or variable and the bad value;
checks that involve several fields live in the class's `__post_init__`. Secrets are held in
`Secret`, which never prints its value. A field whose type is itself a settings class (the
Kafka connection) contributes its options in place.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

ENV_PREFIX = "STOCKSENT_"
_OPTION = "stocksent.option"
_GROUP = "stocksent.group"

Settings = TypeVar("Settings")


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
    """One setting. `name` is the attribute it fills; the flag is `--flag_name` (default: the
    name) with dashes, the variable `STOCKSENT_` + `env_name` (default: the flag's name)."""

    name: str
    parse: Callable[[str], Any]
    default: Any
    help: str
    secret: bool = False
    choices: tuple[str, ...] | None = None
    is_flag: bool = False
    flag_name: str | None = None
    env_name: str | None = None

    @property
    def flag(self) -> str:
        return "--" + (self.flag_name or self.name).replace("_", "-")

    @property
    def env(self) -> str:
        return ENV_PREFIX + (self.env_name or self.flag_name or self.name).upper()

    def choices_text(self, quote: str = "") -> str:
        """` (a, b)`: the choices (an empty one left out), each in `quote`; '' without."""
        if not self.choices:
            return ""
        return " (" + ", ".join(f"{quote}{c}{quote}" for c in self.choices if c) + ")"


# ---- declaring settings classes -----------------------------------------------------------


def setting(
    parse: Callable[[str], Any],
    default: Any,
    help: str,
    *,
    flag: str | None = None,
    env: str | None = None,
    secret: bool = False,
    choices: tuple[str, ...] | None = None,
    is_flag: bool = False,
) -> Any:
    """A dataclass field that is an option; its attribute name names the flag and variable
    unless `flag` (without `--`) or `env` (without `STOCKSENT_`) says otherwise."""
    return shared(Option("", parse, default, help, secret, choices, is_flag, flag, env))


def shared(option: Option, *, flag: str | None = None) -> Any:
    """A dataclass field declared by an `Option` several commands use (one meaning, one
    default, one variable); `flag` renames only this command's flag."""
    if option.name:  # the variable stays the declaration's whatever the attribute is called
        option = dataclasses.replace(option, env_name=option.env_name or option.name)
    if flag is not None:
        option = dataclasses.replace(option, flag_name=flag)
    # a default written as text ("6h") is the parsed value when the class is built directly
    default = (
        option.parse(option.default)
        if option.default and isinstance(option.default, str)
        else option.default
    )
    return dataclasses.field(default=default, metadata={_OPTION: option})


def group(settings_class: type) -> Any:
    """A dataclass field holding another settings class whose options this command takes."""
    return dataclasses.field(default_factory=settings_class, metadata={_GROUP: settings_class})


def options_of(settings_class: type) -> tuple[Option, ...]:
    """Every option of a settings class, groups flattened, in declaration order. A class
    whose options have variables of their own (`STOCKSENT_TRAIN_EPOCHS`, not the
    `STOCKSENT_EPOCHS` another command reads) says so once, as `env_prefix: ClassVar[str] =
    "train_"`; it applies to its `setting(...)` fields without an `env`, not to shared ones."""
    prefix = getattr(settings_class, "env_prefix", "")
    found: list[Option] = []
    for field in dataclasses.fields(settings_class):
        if _GROUP in field.metadata:
            found += options_of(field.metadata[_GROUP])
        elif _OPTION in field.metadata:
            option: Option = field.metadata[_OPTION]
            if prefix and option.env_name is None:
                own = prefix + (option.flag_name or field.name)
                option = dataclasses.replace(option, env_name=own)
            found.append(dataclasses.replace(option, name=field.name))
    return tuple(found)


def build(settings_class: type[Settings], values: Mapping[str, Any]) -> Settings:
    """An instance from resolved values (`resolve`); its `__post_init__` may raise
    SettingsError."""
    given: dict[str, Any] = {}
    for field in dataclasses.fields(settings_class):  # type: ignore[arg-type]
        if _GROUP in field.metadata:
            given[field.name] = build(field.metadata[_GROUP], values)
        elif _OPTION in field.metadata and field.name in values:
            given[field.name] = values[field.name]
    return settings_class(**given)


def require(settings: Any, *names: str) -> None:
    """Raises SettingsError naming the flags and variables of the options in `names` that are
    unset (None or empty)."""
    values = values_of(settings)
    unset = [
        o for o in options_of(type(settings)) if o.name in names and values[o.name] in (None, "")
    ]
    if unset:
        flags = ", ".join(option.flag for option in unset)
        variables = ", ".join(option.env for option in unset)
        raise SettingsError(f"{flags}: required (or set {variables})")


def values_of(settings: Any) -> dict[str, Any]:
    """Option name -> value of a settings instance, groups flattened."""
    values: dict[str, Any] = {}
    for field in dataclasses.fields(settings):
        value = getattr(settings, field.name)
        if _GROUP in field.metadata:
            values.update(values_of(value))
        elif _OPTION in field.metadata:
            values[field.name] = value
    return values


def parser_for(
    settings_class: type, prog: str, description: str | None = None, **kwargs: Any
) -> argparse.ArgumentParser:
    """An argument parser with one flag per option of `settings_class`; a shortened flag is
    not taken for a longer one (`--epoch` is a typo, not `--epochs`)."""
    kwargs.setdefault("allow_abbrev", False)
    parser = argparse.ArgumentParser(prog=prog, description=description, **kwargs)
    add_options(parser, options_of(settings_class))
    return parser


def from_arguments(
    settings_class: type[Settings],
    args: argparse.Namespace | Mapping[str, Any],
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Typed settings from parsed flags (or a mapping of raw strings), the environment and the
    defaults; raises SettingsError."""
    return build(settings_class, resolve(args, options_of(settings_class), environ))


def parse_settings(
    settings_class: type[Settings],
    argv: Sequence[str],
    prog: str,
    description: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Typed settings of a command that takes only options; raises SettingsError."""
    args = parse_flags(parser_for(settings_class, prog, description), argv)
    return from_arguments(settings_class, args, environ)


def parse_flags(parser: argparse.ArgumentParser, argv: Sequence[str]) -> argparse.Namespace:
    """`parser`'s flags from `argv`; an argument it does not know raises SettingsError naming
    it and, for a typo, the closest flag (`parser_for` builds parsers with `allow_abbrev=False`
    so that a shortened flag is one too)."""
    args, unknown = parser.parse_known_args(list(argv))
    if unknown:
        flags = sorted(set(re.findall(r"--[\w-]+", parser.format_help())))
        close = difflib.get_close_matches(unknown[0].split("=")[0], flags, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise SettingsError(f"unrecognized arguments: {' '.join(unknown)}{hint}")
    return args


# ---- parsers: each raises ValueError with a short reason --------------------------------


def int_between(low: int, high: int | None = None) -> Callable[[str], int]:
    """A parser of whole numbers from `low` up to `high` (inclusive; no upper bound if None)."""

    def parse(text: str) -> int:
        value = int(text)
        if value < low or (high is not None and value > high):
            raise ValueError(f"must be >= {low}" if high is None else _between(low, high))
        return value

    parse.__doc__ = f"An integer >= {low}." if high is None else f"An integer {low}..{high}."
    return parse


def float_between(
    low: float, high: float | None = None, *, low_open: bool = False, high_open: bool = False
) -> Callable[[str], float]:
    """A parser of numbers from `low` up to `high`; `*_open` leaves that end out."""

    def parse(text: str) -> float:
        value = float(text)
        below = value <= low if low_open else value < low
        above = high is not None and (value >= high if high_open else value > high)
        if below or above or value != value:
            if high is None:
                raise ValueError(f"must be {'>' if low_open else '>='} {low:g}")
            ends = " (exclusive)" if low_open and high_open else ""
            raise ValueError(_between(low, high) + ends)
        return value

    parse.__doc__ = f"A number from {low:g}" + ("" if high is None else f" to {high:g}") + "."
    return parse


def _between(low: float, high: float) -> str:
    return f"must be between {low:g} and {high:g}"


positive_int = int_between(1)
non_negative_int = int_between(0)
port = int_between(0, 65535)  # 0 disables the endpoint where the option says so
positive_float = float_between(0, low_open=True)
non_negative_float = float_between(0)
fraction = float_between(0, 1, low_open=True, high_open=True)


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


def trimmed(value: str) -> str:
    """Any string, surrounding blanks dropped."""
    return value.strip()


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
        help_text = f"{option.help}{option.choices_text()} [env {option.env}; default {_show_default(option)}]"
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
                metavar=option.flag.removeprefix("--").replace("-", "_").upper(),
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
            # a default written as text ("6h") is parsed like a value (and so checked)
            raw, origin = option.default, f"{option.flag} (default)"
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
        secret = option.secret and isinstance(value, str) and value
        values[option.name] = Secret(value) if secret else value
    return values


def _reason(err: ValueError) -> str:
    # int('abc') and float('abc') explain themselves in Python's words, not the user's
    message = str(err)
    if message.startswith("invalid literal for int()"):
        return "must be a whole number"
    if message.startswith("could not convert string to float"):
        return "must be a number"
    return message


def describe(settings: Any) -> str:
    """The effective configuration, one `name = value` a line, secrets masked."""
    values = values_of(settings)
    lines = []
    for option in options_of(type(settings)):
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
        return ",".join(map(str, option.default)) or "empty"
    return "unset" if option.default in (None, "") else str(option.default)
