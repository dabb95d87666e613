"""Modules imported on first use, so that ``import colvault`` does not import Numba (~0.2 s) or
blosc2 (~0.1 s; its package imports an HTTP client) before a kernel or a codec is needed.

>>> json = LazyModule("json")
>>> json.dumps([1])
'[1]'
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from types import ModuleType
from typing import Any


class LazyModule:
    """Stands for module ``name`` and imports it at the first attribute read.

    Unlike :class:`importlib.util.LazyLoader` this is safe when the first reads come from
    several threads at once (the CSV pool's workers): :func:`importlib.import_module` holds the
    module's import lock. Attributes are read from the module each time, so that a test's
    monkeypatching of the module shows through.
    """

    def __init__(self, name: str, on_import: Callable[[Any], None] | None = None) -> None:
        self.__dict__["lazy_name"] = name
        self.__dict__["lazy_on_import"] = on_import

    def __getattr__(self, attr: str) -> Any:
        module: ModuleType | None = self.__dict__.get("lazy_module")
        if module is None:
            module = importlib.import_module(self.__dict__["lazy_name"])
            if self.__dict__["lazy_on_import"] is not None:
                self.__dict__["lazy_on_import"](module)
            self.__dict__["lazy_module"] = module
        return getattr(module, attr)

    def __setattr__(self, attr: str, value: Any) -> None:
        raise AttributeError(f"cannot set {attr!r} on lazy module {self.lazy_name!r}")

    def __repr__(self) -> str:
        return f"<lazy module {self.lazy_name!r}>"


def kernel_module(name: str) -> LazyModule:
    """``colvault.kernels.<name>``, imported on first use; from then on a compile that keeps
    the user waiting is said on stderr (:mod:`colvault.kernels.compiling`)."""
    return LazyModule(f"colvault.kernels.{name}", on_import=_watch_compiles)


def _watch_compiles(module: ModuleType) -> None:
    from .kernels import compiling

    compiling.watch()
