"""Child processes that end with the process that started them.

Linux sends a child a chosen signal when the thread that started it exits, however it exits
(`prctl(PR_SET_PDEATHSIG)`, set here by util-linux `setpriv --pdeathsig` just before the
child's program starts): a `stocksent run`, benchmark or test session that is killed with
SIGKILL, or whose terminal closes, does not leave Kafka or a 1 GB classifier running on.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence


def exits_with_parent(argv: Sequence[str], signal_name: str = "TERM") -> list[str]:
    """`argv` run so that Linux sends it SIGTERM (a graceful stop) when the thread that started
    it exits. Unchanged where setpriv is missing. Start children from a thread that outlives
    them (the main one)."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", signal_name, "--", *argv] if setpriv else list(argv)
