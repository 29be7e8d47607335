"""Generated sections of hand-written files (README, docs/REFERENCE.md, `.env.example`, a model
card): the text between a start and an end marker line, read or replaced. One splice rule for
every file that has one."""

from __future__ import annotations


class MissingMarkersError(ValueError):
    """The text lacks a section's start or end marker."""


def html_markers(name: str) -> tuple[str, str]:
    """`<!-- name:start -->` and `<!-- name:end -->`, the markers of a Markdown section."""
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def section(text: str, start: str, end: str) -> str | None:
    """The text after the line of `start` up to `end`, or None without both markers."""
    if start not in text or end not in text.split(start, 1)[1]:
        return None
    return text.split(start, 1)[1].split(end, 1)[0].removeprefix("\n")


def splice(text: str, start: str, end: str, body: str) -> str:
    """`text` with the section between the markers replaced by `body` (which starts on the line
    after `start`; end it with a newline to keep `end` on its own line)."""
    if section(text, start, end) is None:
        raise MissingMarkersError(f"no {start} ... {end} markers")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{body}{end}{tail}"
