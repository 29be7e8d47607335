"""`.env.example` shows each option's real default, so copying it changes nothing by itself."""

from __future__ import annotations

import importlib
import re
from typing import Any

from common.kafka_settings import CONNECTION_OPTIONS
from stocksent.service_process import REPO_ROOT
from tools.reference import COMMANDS


def _shown(default: Any) -> str:
    if default is None:
        return ""
    if isinstance(default, bool):
        return str(default).lower()
    if isinstance(default, tuple):
        return ",".join(map(str, default))
    return str(default)


def _same(value: str, expected: set[str]) -> bool:
    if value in expected:
        return True
    try:  # numbers may be written either way (10 vs 10.0)
        return any(float(value) == float(e) for e in expected if e)
    except ValueError:
        return False


def test_commented_defaults_match_the_code() -> None:
    # a name several commands share (e.g. STOCKSENT_METRICS_PORT) may show any one's default
    defaults: dict[str, set[str]] = {}
    lists = [CONNECTION_OPTIONS]
    lists += [getattr(importlib.import_module(m), a) for _, m, a in COMMANDS]
    for option in (o for options in lists for o in options if not o.secret):
        defaults.setdefault(option.env, set()).add(_shown(option.default))
    text = (REPO_ROOT / ".env.example").read_text(encoding="utf-8")
    wrong = {}
    for name, value in re.findall(r"^# (STOCKSENT_[A-Z0-9_]+)=(.*)$", text, re.M):
        if name not in defaults or _same(value.strip(), defaults[name]):
            continue
        wrong[name] = (value, sorted(defaults[name]))
    assert not wrong, f".env.example shows stale defaults (shown, actual): {wrong}"
