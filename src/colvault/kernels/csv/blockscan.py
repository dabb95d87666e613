"""What the importer's reading thread needs to know of a block before cutting it: where its last
line ends, and whether it holds the quote character or a CR.

Why a kernel: the block is a NumPy buffer read in place (no ``bytes`` object to search), and one
pass answers all three questions at memory speed. While it is not compiled, the blocks of a
small file are scanned by numpy instead (:func:`facts`): three passes, about a millisecond per
MiB, where compiling the kernel costs 0.2-0.5 s.
"""

from __future__ import annotations

import numba
import numpy as np

from ..wordops import KERNEL, ONES, load8, zero_bytes
from . import jit

_LF = 10
_CR = 13
_WCR = np.uint64(_CR) * ONES


@numba.njit(cache=True, nogil=True, **KERNEL)
def block_facts(buf, quotechar):
    """(index of the last LF in ``buf`` or -1, whether byte ``quotechar`` occurs (never for a
    negative one), whether a CR occurs)."""
    n = buf.shape[0]
    wquote = np.uint64(quotechar if quotechar >= 0 else _LF) * ONES
    hits_quote = np.uint64(0)
    hits_cr = np.uint64(0)
    i = 0
    while i + 8 <= n:  # no early exit: the loop vectorizes
        y = load8(buf, i)
        hits_quote |= zero_bytes(y ^ wquote)  # nonzero once any byte matched
        hits_cr |= zero_bytes(y ^ _WCR)
        i += 8
    quote = quotechar >= 0 and hits_quote != 0
    cr = hits_cr != 0
    while i < n:
        c = buf[i]
        quote |= quotechar >= 0 and c == quotechar
        cr |= c == _CR
        i += 1
    last = n - 1
    while last >= 0 and buf[last] != _LF:
        last -= 1
    return last, quote, cr


def block_facts_numpy(buf: np.ndarray, quotechar: int) -> tuple[int, bool, bool]:
    """:func:`block_facts` in numpy: the same answers, by three vectorized passes."""
    lfs = np.flatnonzero(buf == _LF)
    quote = quotechar >= 0 and bool((buf == quotechar).any())
    return int(lfs[-1]) if len(lfs) else -1, quote, bool((buf == _CR).any())


def facts(buf: np.ndarray, quotechar: int) -> tuple[int, bool, bool]:
    """:func:`block_facts` of ``buf``, by the kernel or, during the import of a small file
    while the kernel is not compiled, by numpy (:func:`.jit.in_numpy`)."""
    if jit.in_numpy(block_facts, buf, quotechar):
        return block_facts_numpy(buf, quotechar)
    last, quote, cr = block_facts(buf, quotechar)
    return int(last), bool(quote), bool(cr)
