"""The packages form layers: each imports only the ones below it, and nothing installed
imports the benchmarks, the doc tools or the tests (see common/__init__.py)."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
PROJECT = {"common", "model", "producers", "stream", "stocksent", "bench", "tools", "tests"}
MAY_IMPORT = {
    "common": {"common"},
    "model": {"common", "model"},
    "producers": {"common", "producers"},
    "stream": {"common", "model", "stream"},
    "stocksent": {"common", "model", "producers", "stream", "stocksent"},
}


def project_imports(path: Path) -> set[str]:
    """Top-level project packages `path` imports, at module level or inside functions."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found |= {name.split(".")[0] for name in names} & PROJECT
    return found


@pytest.mark.parametrize("package", sorted(MAY_IMPORT))
def test_a_package_imports_only_the_layers_below_it(package: str) -> None:
    wrong = {
        str(path.relative_to(REPO_ROOT)): sorted(project_imports(path) - MAY_IMPORT[package])
        for path in sorted((REPO_ROOT / package).rglob("*.py"))
    }
    assert {path: names for path, names in wrong.items() if names} == {}


def test_what_is_installed_is_the_layers_without_bench_and_tools() -> None:
    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    included = config["tool"]["setuptools"]["packages"]["find"]["include"]
    assert {pattern.rstrip("*") for pattern in included} == set(MAY_IMPORT)


def test_the_layer_check_sees_imports_inside_functions(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "import os\n\ndef f():\n    from stocksent.run import main\n    import bench.run\n"
    )
    assert project_imports(module) == {"stocksent", "bench"}
