"""common.marked_sections: the one splice of generated sections."""

from __future__ import annotations

import pytest

from common.marked_sections import MissingMarkersError, html_markers, section, splice

START, END = html_markers("table")
PAGE = f"intro\n{START}\nold rows\n{END}\noutro\n"


def test_splice_replaces_only_the_section() -> None:
    assert splice(PAGE, START, END, "new\n") == f"intro\n{START}\nnew\n{END}\noutro\n"
    assert section(splice(PAGE, START, END, "new\n"), START, END) == "new\n"


def test_missing_markers_are_named() -> None:
    assert section("no markers", START, END) is None
    with pytest.raises(MissingMarkersError, match="table:start"):
        splice(f"{START} but no end", START, END, "x\n")
