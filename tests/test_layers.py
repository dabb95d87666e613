"""Imports point one way: kernels <- engine <- io <- cli, and inside the engine format <- disk
<- session <- query <- nodes <- store (docs/architecture.md "Layers")."""

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
    assert "colvault.kernels.encoding.zonemap" in imported_modules(PKG / "engine" / "zonemaps.py")


# -- inside the engine: format -> disk -> session -> query -> nodes -> store -----------------

ENGINE_LAYERS: list[tuple[str, set[str]]] = [
    (
        "format",  # what bytes and values mean: schemas, encodings, manifests, conversions
        {
            "names",
            "schema",
            "frames",
            "coded",
            "masked",
            "arrowin",
            "coerce",
            "codec",
            "checksum",
            "buffers",
            "zonemaps",
            "encodings",
            "manifest",
            "indexing",
            "display",
            "pickles",
        },
    ),
    (
        "disk",  # files and the catalog: segments, reads, writes, recovery, leases
        {
            "seam",
            "segments",
            "changes",
            "catalog",
            "locking",
            "leases",
            "recovery",
            "history",
            "pastview",
            "reading",
            "writer",
            "tails",
        },
    ),
    (
        "session",
        {"pending", "session", "sidecars", "compact", "verify", "edits", "staging", "gcpause"},
    ),
    ("query", {"records", "reads", "detached", "query"}),
    ("nodes", {"nodes", "table", "array", "tree", "rowedits"}),
    ("store", {"store", "__init__"}),
]


def engine_layer(module: str) -> int:
    """The rank of an engine module (``query.execute`` is in ``query``); KeyError if none."""
    top = module.split(".")[0]
    for rank, (_, members) in enumerate(ENGINE_LAYERS):
        if top in members:
            return rank
    raise KeyError(module)


def runtime_imports(source: str, package: list[str]) -> set[str]:
    """The engine modules a source imports when it runs (``if TYPE_CHECKING:`` blocks left
    out: annotations may name any layer), as names relative to ``colvault.engine``."""
    tree = ast.parse(source)
    typing_only = {
        id(n)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for n in ast.walk(node)
    }
    found = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
            continue
        if not isinstance(node, ast.ImportFrom):
            continue
        base = package[: len(package) - node.level + 1] if node.level else []
        module = ".".join([*base, node.module] if node.module else base)
        for alias in node.names:
            name = f"{module}.{alias.name}"
            path = PKG.parent / name.replace(".", "/")
            found.add(name if path.with_suffix(".py").exists() or path.is_dir() else module)
    prefix = "colvault.engine."
    return {m[len(prefix) :] for m in found if m.startswith(prefix)}


def upward_imports(source: str, module: str) -> list[str]:
    """The imports of engine module ``module`` (e.g. ``query.execute``) from a higher layer."""
    package = ["colvault", "engine", *module.split(".")[:-1]]
    rank = engine_layer(module)
    return sorted(m for m in runtime_imports(source, package) if engine_layer(m) > rank)


def test_every_engine_module_has_a_layer():
    modules = [
        ".".join(f.relative_to(PKG / "engine").with_suffix("").parts)
        for f in (PKG / "engine").rglob("*.py")
    ]
    missing = []
    for m in modules:
        try:
            engine_layer(m)
        except KeyError:
            missing.append(m)
    assert missing == [], "add these modules to ENGINE_LAYERS"


def test_engine_layers_import_downward_only():
    offences = []
    for f in sorted((PKG / "engine").rglob("*.py")):
        module = ".".join(f.relative_to(PKG / "engine").with_suffix("").parts)
        offences += [f"{module} imports {m}" for m in upward_imports(f.read_text(), module)]
    assert offences == []


def test_the_engine_checker_sees_upward_imports():
    """A session-layer module importing a node module, a query importing the store: both
    caught; the same import under TYPE_CHECKING is allowed."""
    assert upward_imports("from .table import Table\n", "session") == ["table"]
    assert upward_imports("from ..store import Store\n", "query.execute") == ["store"]
    assert upward_imports("from . import nodes\n", "writer") == ["nodes"]
    typed = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .table import Table\n"
    assert upward_imports(typed, "session") == []
    assert upward_imports("from .schema import ColumnSpec\n", "store") == []
    assert upward_imports("import colvault.engine.store\n", "tree") == ["store"]


def _private_imports(root: Path) -> set[tuple[str, str]]:
    """(module, name) for every ``from ... import _name`` of our own modules under ``root``
    (other libraries' private names are their business, and said so where used)."""
    found = set()
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            ours = isinstance(node, ast.ImportFrom) and (
                node.level or (node.module or "").startswith("colvault")
            )
            if ours:
                found |= {
                    (str(path.relative_to(root)), alias.name)
                    for alias in node.names
                    if alias.name.startswith("_")
                }
    return found


def test_no_private_name_is_imported_across_modules():
    """A name shared between modules is public, with a docstring (issue 15, item 3)."""
    assert _private_imports(PKG) == set()


def test_the_private_import_checker_sees_one(tmp_path):
    (tmp_path / "a.py").write_text("from .b import _hidden, shown\n")
    assert _private_imports(tmp_path) == {("a.py", "_hidden")}
