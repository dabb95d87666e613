"""Imports point one way: kernels <- engine <- io <- cli (ARCHITECTURE.md "Layers")."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "src" / "colvault"


def imported_modules(path: Path) -> set[str]:
    """Absolute names of the colvault modules a file imports (relative imports resolved)."""
    package = ["colvault", *path.parent.relative_to(PKG).parts]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, node.module] if node.module else base)
            found.add(module)
            found |= {f"{module}.{a.name}" for a in node.names}
    return {m for m in found if m.startswith("colvault")}


FORBIDDEN = {
    "kernels": ("colvault.engine", "colvault.io", "colvault.cli"),
    "engine": ("colvault.io", "colvault.cli"),
    "io": ("colvault.cli",),
}


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports_point_one_way(layer):
    files = sorted((PKG / layer).rglob("*.py"))
    assert files
    offences = [
        f"{f.relative_to(PKG)} imports {m}"
        for f in files
        for m in sorted(imported_modules(f))
        if m.startswith(FORBIDDEN[layer])
    ]
    assert offences == []


def test_checker_sees_relative_imports():
    assert "colvault.engine.coerce" in imported_modules(PKG / "engine" / "table.py")
    assert "colvault.kernels.zonemap" in imported_modules(PKG / "engine" / "zonemaps.py")
