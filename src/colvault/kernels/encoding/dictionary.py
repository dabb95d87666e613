"""Dictionary encoding of fixed-width text in one hashed pass.

A chunk of a ``category`` column arrives as numpy ``U<w>`` text, viewed here as rows of ``w``
uint32 code points. Each row is hashed (FNV-1a over its code points) into an open-addressing
table; equal rows get the same code, in order of first appearance. ``np.unique`` would sort the
strings instead: 17 ms against about 1 ms for 131072 short strings, measured. (Inputs of at
most :data:`.compiling.SMALL` rows do take numpy while the kernel is not compiled yet: a new
user's first tables then cost no compile for it.)
"""

from __future__ import annotations

import numba
import numpy as np

from .. import compiling
from ..wordops import KERNEL

_NO_INTS = np.zeros(0, np.int64)  # stands for the kernel's int64 arrays in would_compile


@numba.njit(cache=True, nogil=True, **KERNEL)
def _dict_encode(rows, slots, slot_code, codes, first):
    """:func:`dict_encode` into arrays the caller allocated (``slots``: -1, a power of two at
    least twice the rows); returns the number of distinct values. Allocations and the row
    comparison are not jitted helpers of their own: each would be one more Numba compile."""
    n = rows.shape[0]
    width = rows.shape[1]
    mask = slots.shape[0] - 1
    count = 0
    for i in range(n):
        h = np.uint64(14695981039346656037)
        for k in range(width):
            h = (h ^ np.uint64(rows[i, k])) * np.uint64(1099511628211)
        s = np.int64(h & np.uint64(mask))
        while True:
            j = slots[s]
            if j < 0:
                slots[s] = i
                slot_code[s] = count
                first[count] = i
                codes[i] = count
                count += 1
                break
            same = True
            for k in range(width):
                if rows[i, k] != rows[j, k]:
                    same = False
                    break
            if same:
                codes[i] = slot_code[s]
                break
            s = (s + 1) & mask
    return count


def dict_encode(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(codes, first) for rows of code points: ``codes[i]`` numbers row i's distinct value,
    ``first[c]`` is the first row holding value ``c`` (so the dictionary is ``text[first]``)."""
    rows = np.ascontiguousarray(rows, np.uint32)
    n = rows.shape[0]
    few = 0 < n <= compiling.SMALL and rows.shape[1] > 0
    if few and compiling.would_compile(_dict_encode, rows, *[_NO_INTS] * 4):
        as_bytes = rows.view(np.dtype((np.void, 4 * rows.shape[1]))).reshape(n)
        _, first, inverse = np.unique(as_bytes, return_index=True, return_inverse=True)
        return _numbered(first, inverse.reshape(n))
    size = 16
    while size < 2 * n:
        size *= 2
    codes = np.empty(n, np.int64)
    first = np.empty(n, np.int64)
    count = _dict_encode(rows, np.full(size, -1, np.int64), np.empty(size, np.int64), codes, first)
    return codes, first[:count]


@numba.njit(cache=True, nogil=True, **KERNEL)
def _renumber(codes, remap, order, out):
    count = 0
    for i in range(codes.shape[0]):
        c = codes[i]
        k = remap[c]
        if k < 0:
            k = count
            remap[c] = k
            order[k] = c
            count += 1
        out[i] = k
    return count


def _numbered(first: np.ndarray, inverse: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(codes, first) numbering values in order of first appearance, from ``np.unique``'s
    first index of each distinct value and each row's distinct value."""
    order = np.argsort(first, kind="stable")
    rank = np.empty(len(first), np.int64)
    rank[order] = np.arange(len(first))
    return rank[inverse], first[order].astype(np.int64)


def renumber(codes: np.ndarray, ndict: int) -> tuple[np.ndarray, np.ndarray]:
    """(new codes, order) for codes into a dictionary of ``ndict`` values: the values used,
    numbered in order of first appearance (``order[k]`` is the old code of new code ``k``), as
    :func:`dict_encode` numbers text."""
    codes = np.ascontiguousarray(codes, np.int64)
    few = 0 < len(codes) <= compiling.SMALL
    if few and compiling.would_compile(_renumber, codes, codes, codes, codes):
        _, first, inverse = np.unique(codes, return_index=True, return_inverse=True)
        new, at = _numbered(first, inverse.reshape(len(codes)))
        return new, codes[at]
    order = np.empty(ndict, np.int64)
    out = np.empty(codes.shape[0], np.int64)
    count = _renumber(codes, np.full(ndict, -1, np.int64), order, out)
    return out, order[:count]
