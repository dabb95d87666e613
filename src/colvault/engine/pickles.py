"""Pickling for ``node.objects`` with a restricted unpickler.

A pickle can call any global it names, so loading one from a store someone else wrote is running
their code. The allow-list names exact ``(module, qualname)`` pairs — builtin containers and
scalars, numpy's array/dtype/scalar reconstruction functions, ``datetime`` types, ``OrderedDict``,
``Decimal``, ``Fraction`` — never whole modules, so gadgets such as ``builtins.eval`` or
``numpy.testing._private.utils.runstring`` are refused. ``trust_pickles=True`` lifts the list.
"""

from __future__ import annotations

import io
import pickle
from typing import Any

from ..errors import UnsafePickleError

PROTOCOL = 5

ALLOWED: frozenset[tuple[str, str]] = frozenset(
    [("builtins", n) for n in (
        "bool", "bytearray", "bytes", "complex", "dict", "float", "frozenset", "int", "list",
        "range", "set", "slice", "str", "tuple",
    )]
    + [("datetime", n) for n in ("date", "datetime", "time", "timedelta", "timezone")]
    + [("collections", "OrderedDict"), ("decimal", "Decimal"), ("fractions", "Fraction")]
    + [("numpy", "dtype"), ("numpy", "ndarray")]
    + [(f"numpy.{core}.multiarray", n)
       for core in ("core", "_core") for n in ("_reconstruct", "scalar")]
    + [(f"numpy.{core}.numeric", "_frombuffer") for core in ("core", "_core")]
)  # fmt: skip


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, data: bytes, where: str) -> None:
        super().__init__(io.BytesIO(data))
        self.where = where

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in ALLOWED:
            raise UnsafePickleError(
                f"{self.where}: refusing to unpickle global '{module}.{name}' (not on the "
                "allow-list); open the store with trust_pickles=True if you trust its author"
            )
        return super().find_class(module, name)


def dumps(obj: Any) -> bytes:
    return pickle.dumps(obj, protocol=PROTOCOL)


def loads(data: bytes, where: str, trusted: bool) -> Any:
    """Unpickle ``data``; ``where`` names the node and key in error messages."""
    if trusted:
        return pickle.loads(data)
    return _RestrictedUnpickler(data, where).load()
