"""The checkout this code runs from: its root, and the files commands find there. The one
definition every module and test uses (none walks up from its own file)."""

from __future__ import annotations

from pathlib import Path
from typing import Final

REPO_ROOT: Final = Path(__file__).resolve().parent.parent
README: Final = REPO_ROOT / "README.md"
SAMPLES: Final = REPO_ROOT / "samples"
SHARED: Final = REPO_ROOT.parent / "shared"
"""The course material beside the checkout (data sets, notes); absent on most machines."""
