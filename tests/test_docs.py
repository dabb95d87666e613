"""docs/architecture.md names the modules that exist, and every one of them.

The page is the living description of the code: a module renamed, removed or added without a
line there fails here. Modules count as named when they appear in backticks, as a path
(`engine/store.py`, `colvault/engine/store.py`, `cli.py`) or dotted (`colvault.engine.store`);
a package as its directory (`engine/query/`).
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "src" / "colvault"
DOC = ROOT / "docs" / "architecture.md"

#: Top-level folders of the repository that backticked paths may point into.
REPO_DIRS = ("tests", "asv_benchmarks", "notebooks", "docs", "src")
#: First components that make a backticked path one under ``src/colvault``.
PACKAGES = ("colvault", "engine", "io", "kernels", "cli")

_SPAN = re.compile(r"`([^`\n]+)`")
_PY_PATH = re.compile(r"(?<![\w./])((?:\w+/)*\w+\.py)\b")
_DIR_PATH = re.compile(r"^((?:\w+/)+)$")
_DOTTED = re.compile(r"(?<![\w.])(colvault(?:\.\w+)+)")


def _under_pkg(parts: list[str]) -> Path:
    """A path written relative to the package (``engine/store.py``) or with it in front."""
    if parts[:2] == ["src", "colvault"]:
        parts = parts[2:]
    elif parts[:1] == ["colvault"]:
        parts = parts[1:]
    return PKG.joinpath(*parts)


def _resolve_path(text: str) -> Path:
    parts = text.strip("/").split("/")
    if parts[0] in REPO_DIRS and parts[:2] != ["src", "colvault"]:
        return ROOT.joinpath(*parts)
    return _under_pkg(parts)


def _resolve_dotted(name: str) -> tuple[Path | None, str | None]:
    """(the deepest module or package the dotted name reaches, or an error)."""
    parts = name.split(".")[1:]
    here = PKG
    for i, part in enumerate(parts):
        if (here / part).is_dir() and (here / part / "__init__.py").exists():
            here = here / part
            continue
        if (here / f"{part}.py").exists():
            return here / f"{part}.py", None  # anything after it is an attribute
        # an attribute of a package: only what its __init__ defines or imports
        init = (here / "__init__.py").read_text()
        if re.search(rf"\b{re.escape(part)}\b", init):
            return here, None
        shown = ".".join(["colvault", *parts[: i + 1]])
        return None, f"`{name}`: no module or package {shown}"
    return here, None


def check(text: str) -> tuple[set[Path], list[str]]:
    """(module files and package directories the text names, errors for names that do not
    exist)."""
    named: set[Path] = set()
    errors: list[str] = []
    for span in _SPAN.findall(text):
        for path in _PY_PATH.findall(span):
            target = _resolve_path(path)
            if target.is_file():
                named.add(target)
            else:
                errors.append(f"`{path}` (in `{span}`): no file {target.relative_to(ROOT)}")
        whole = _DIR_PATH.match(span.strip())
        if whole and whole.group(1).split("/")[0] in PACKAGES:
            target = _under_pkg(whole.group(1).strip("/").split("/"))
            if (target / "__init__.py").is_file():
                named.add(target)
            else:
                errors.append(f"`{span}`: no package {target.relative_to(ROOT)}")
        for dotted in _DOTTED.findall(span):
            target, error = _resolve_dotted(dotted)
            if error is not None:
                errors.append(error)
            elif target is not None:
                named.add(target)
    return named, errors


def modules() -> list[Path]:
    return sorted(PKG.rglob("*.py"))


def missing(named: set[Path]) -> list[str]:
    """Modules under src/colvault that the text never names (a package's ``__init__.py``
    counts as named with its directory)."""
    out = []
    for m in modules():
        if m in named or (m.name == "__init__.py" and m.parent in named):
            continue
        out.append(str(m.relative_to(PKG)))
    return out


def test_doc_names_only_modules_that_exist():
    _, errors = check(DOC.read_text())
    assert not errors, "docs/architecture.md names modules that do not exist:\n" + "\n".join(errors)


def test_doc_names_every_module():
    named, _ = check(DOC.read_text())
    left = missing(named)
    assert not left, "add a line for these modules to docs/architecture.md: " + ", ".join(left)


def test_checker_catches_wrong_names():
    text = (
        "| `engine/store.py` | `engine/nosuch.py` | `colvault.engine.nothere` | "
        "`colvault.io.dask.to_dask_dataframe` | `colvault.open` | `kernels/` | `engine/gone/` |"
        " `tests/test_layers.py` | `tests/nosuch.py` |"
    )
    named, errors = check(text)
    assert PKG / "engine" / "store.py" in named
    assert PKG / "io" / "dask.py" in named
    assert PKG / "kernels" in named
    assert len(errors) == 4
    assert any("engine/nosuch.py" in e for e in errors)
    assert any("colvault.engine.nothere" in e for e in errors)
    assert any("engine/gone" in e for e in errors)
    assert any("tests/nosuch.py" in e for e in errors)


def test_checker_sees_missing_modules():
    named, _ = check("`engine/store.py` `kernels/`")
    left = missing(named)
    assert "engine/store.py" not in left
    assert "kernels/__init__.py" not in left
    assert "engine/catalog.py" in left
