"""Branch-free selects and the missing-value test, as Numba intrinsics shared by the query and
encoding kernels: typed and emitted in place, so a kernel using them compiles no helper function
and no branch (see :func:`_missing`).
"""

from __future__ import annotations

import operator
from typing import Any

import numpy as np
from llvmlite import ir
from numba import types
from numba.core.typing import signature
from numba.extending import intrinsic

NAT = np.iinfo(np.int64).min


def _missing(typingctx: Any, x: Any, nat: Any) -> Any:
    """Whether ``x`` is missing: NaN for floats, NaT (int64 min) for int64 when ``nat``, never
    otherwise. An intrinsic, like the selects below: typed and emitted in place, so a kernel
    using it compiles no helper function and no branch (Numba's SSA pass and LLVM both pay for
    every ``a if c else b``: it is a branch and a join in Numba's IR)."""
    if not isinstance(nat, types.Boolean) or not isinstance(x, (types.Integer, types.Float)):
        return None

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        xt = sig.args[0]
        v, flag = args
        if isinstance(xt, types.Float):
            return builder.fcmp_unordered("uno", v, v)
        if xt.signed and xt.bitwidth == 64:
            return builder.and_(flag, builder.icmp_signed("==", v, ir.Constant(v.type, NAT)))
        return ir.Constant(ir.IntType(1), 0)

    return types.boolean(x, nat), codegen


def _chooser(op: Any, fcmp: str) -> Any:
    def typer(typingctx: Any, a: Any, b: Any) -> Any:
        if a != b or not isinstance(a, (types.Integer, types.Float)):
            return None

        def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
            ty = sig.args[0]
            if isinstance(ty, types.Float):  # operands are never NaN: say so, and LLVM
                flags = ("nnan", "nsz")  # vectorizes a loop of them as a min/max reduction
                test = builder.fcmp_ordered(fcmp, args[0], args[1], flags=flags)
                return builder.select(test, args[0], args[1], flags=flags)
            test = context.get_function(op, signature(types.boolean, ty, ty))
            return builder.select(test(builder, args), args[0], args[1])

        return a(a, b), codegen

    return typer


def _where_typer(typingctx: Any, c: Any, a: Any, b: Any) -> Any:
    """``a if c else b`` for ``a`` and ``b`` of one numeric type, without a branch."""
    if (
        a != b
        or not isinstance(c, types.Boolean)
        or not isinstance(a, (types.Integer, types.Float))
    ):
        return None

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        return builder.select(args[0], args[1], args[2])

    return a(c, a, b), codegen


# (assigned, not decorated: mypy would see the intrinsic's typing signature)
missing: Any = intrinsic(_missing)
#: ``a if a < b else b`` and ``a if a > b else b`` (Python's ``min(b, a)``, ``max(b, a)``), for
#: numbers of one type; float operands must never be NaN (and which of -0.0 and 0.0 comes out
#: is not specified), so that a loop reducing with them vectorizes.
lesser: Any = intrinsic(_chooser(operator.lt, "<"))
greater: Any = intrinsic(_chooser(operator.gt, ">"))
where: Any = intrinsic(_where_typer)
