"""Grouped aggregates, dense (small key ranges) and hashed (any int64 keys); see
:mod:`.aggregates` for the semantics."""

from __future__ import annotations

from typing import Any, NamedTuple

import numba
import numpy as np

from ..wordops import HELPER, KERNEL
from .aggcore import compensated, int_term, is_missing, neumaier, take

NAT = np.iinfo(np.int64).min


# --- group-by --------------------------------------------------------------------------------

# Columns of ``GroupState.ints`` (int64) and ``GroupState.floats`` (float64); rows are groups.
G_COUNT, G_NAN, G_ISUM, G_LCOUNT = range(4)
G_FSUM, G_FCOMP, G_M2, G_LSUM, G_LCOMP, G_LMEAN, G_LM2, G_LM2C = range(8)
G_INTS, G_FLOATS = 4, 8


class GroupState(NamedTuple):
    """Accumulators of a group-by, one row per group (a dense key code or a hash group id), so
    that a group's fields share a cache line or two.

    ``ints`` (int64, groups x 4): G_COUNT non-missing values, G_NAN missing values, G_ISUM the
    exact wrapping integer sum (uint64 bits for unsigned columns), G_LCOUNT per-chunk scratch.
    ``floats`` (float64, groups x 8): G_FSUM + G_FCOMP the compensated float64 sum, G_M2 the sum
    of squared deviations from the mean; G_LSUM.. are per-chunk scratch, zero between calls.
    ``vmin``, ``vmax`` (the column's dtype; int64 for datetimes): valid only where G_COUNT > 0.
    """

    ints: np.ndarray
    floats: np.ndarray
    vmin: np.ndarray
    vmax: np.ndarray


def new_group_state(groups: int, dtype: Any) -> GroupState:
    """Zeroed accumulators for ``groups`` groups of a column of ``dtype``."""
    dtype = np.dtype(dtype)
    if dtype.kind in "Mm":
        dtype = np.dtype(np.int64)
    return GroupState(
        np.zeros((groups, G_INTS), np.int64),
        np.zeros((groups, G_FLOATS), np.float64),
        np.zeros(groups, dtype),
        np.zeros(groups, dtype),
    )


@numba.njit(cache=True, nogil=True, **HELPER)
def _group_core(codes, values, nat, ints, floats, vmin, vmax):
    """Fold a contiguous chunk into per-group accumulators; ``codes[j]`` is the group of row j.

    Two passes: per-group count, compensated sum, min and max, then the compensated squared
    deviations from each group's chunk mean; each touched group's chunk (count, sum, M2) is then
    merged into its totals with Chan et al.'s formula. Only touched groups are visited, so a
    chunk costs O(rows) however many groups there are.
    """
    groups = ints.shape[0]
    m = values.shape[0]
    touched = np.empty(min(m, groups), np.int64)
    nt = 0
    for j in range(m):
        k = codes[j]
        if k < 0 or k >= groups:
            raise IndexError("group code out of range")
        x = values[j]
        if is_missing(x, nat):
            ints[k, G_NAN] += 1
            continue
        c = ints[k, G_LCOUNT]
        if c == 0:
            touched[nt] = k
            nt += 1
            if ints[k, G_COUNT] == 0:
                vmin[k] = x
                vmax[k] = x
        ints[k, G_LCOUNT] = c + 1
        ints[k, G_ISUM] += int_term(x)
        s, cc = neumaier(floats[k, G_LSUM], floats[k, G_LCOMP], np.float64(x))
        floats[k, G_LSUM] = s
        floats[k, G_LCOMP] = cc
        vmin[k] = x if x < vmin[k] else vmin[k]
        vmax[k] = x if x > vmax[k] else vmax[k]
    for t in range(nt):
        k = touched[t]
        floats[k, G_LMEAN] = compensated(floats[k, G_LSUM], floats[k, G_LCOMP]) / ints[k, G_LCOUNT]
    for j in range(m):
        x = values[j]
        if is_missing(x, nat):
            continue
        k = codes[j]
        d = np.float64(x) - floats[k, G_LMEAN]
        s, cc = neumaier(floats[k, G_LM2], floats[k, G_LM2C], d * d)
        floats[k, G_LM2] = s
        floats[k, G_LM2C] = cc
    for t in range(nt):
        k = touched[t]
        nb = ints[k, G_LCOUNT]
        na = ints[k, G_COUNT]
        m2b = compensated(floats[k, G_LM2], floats[k, G_LM2C])
        if na == 0:
            floats[k, G_FSUM] = floats[k, G_LSUM]
            floats[k, G_FCOMP] = floats[k, G_LCOMP]
            floats[k, G_M2] = m2b
        else:
            sa = compensated(floats[k, G_FSUM], floats[k, G_FCOMP])
            delta = floats[k, G_LMEAN] - sa / na
            floats[k, G_M2] += m2b + delta * delta * (float(na) * float(nb) / float(na + nb))
            s, cc = neumaier(floats[k, G_FSUM], floats[k, G_FCOMP], floats[k, G_LSUM])
            s, cc = neumaier(s, cc, floats[k, G_LCOMP])
            floats[k, G_FSUM] = s
            floats[k, G_FCOMP] = cc
        ints[k, G_COUNT] = na + nb
        ints[k, G_LCOUNT] = 0
        floats[k, G_LSUM:] = 0.0


@numba.njit(cache=True, nogil=True, **KERNEL)
def group_by_dense_update(key_codes, values, positions, nat, ints, floats, vmin, vmax):
    """Fold one chunk into a dense group-by: ``key_codes`` (int64, aligned with ``values``) are
    group numbers in [0, groups), e.g. ``key - min_key``. The four state arrays are a
    :class:`GroupState` (call as ``group_by_dense_update(codes, values, pos, nat, *state)``).
    ``positions`` and ``nat`` as in :func:`stats_update`; a code out of range raises IndexError.
    """
    _group_core(take(key_codes, positions), take(values, positions), nat, ints, floats, vmin, vmax)


@numba.njit(cache=True, nogil=True, **KERNEL)
def _merge_accumulators(ints, floats, o_ints, o_floats, target):
    """Counts, sums and M2 of :func:`group_merge` (Chan et al. per group)."""
    for g in range(o_ints.shape[0]):
        k = target[g]
        ints[k, G_NAN] += o_ints[g, G_NAN]
        nb = o_ints[g, G_COUNT]
        if nb == 0:
            continue
        na = ints[k, G_COUNT]
        ints[k, G_ISUM] += o_ints[g, G_ISUM]
        if na == 0:
            floats[k, G_FSUM] = o_floats[g, G_FSUM]
            floats[k, G_FCOMP] = o_floats[g, G_FCOMP]
            floats[k, G_M2] = o_floats[g, G_M2]
        else:
            sa = compensated(floats[k, G_FSUM], floats[k, G_FCOMP])
            sb = compensated(o_floats[g, G_FSUM], o_floats[g, G_FCOMP])
            delta = sb / nb - sa / na
            w = float(na) * float(nb) / float(na + nb)
            floats[k, G_M2] += o_floats[g, G_M2] + delta * delta * w
            s, cc = neumaier(floats[k, G_FSUM], floats[k, G_FCOMP], o_floats[g, G_FSUM])
            s, cc = neumaier(s, cc, o_floats[g, G_FCOMP])
            floats[k, G_FSUM] = s
            floats[k, G_FCOMP] = cc
        ints[k, G_COUNT] = na + nb


def group_merge(state: GroupState, other: GroupState, target: np.ndarray) -> None:
    """Fold another worker's accumulators into ``state``: group ``g`` of ``other`` goes to group
    ``target[g]`` (distinct; ``np.arange(groups)`` for dense states of equal size).

    Sums and M2 merge in a kernel compiled once for all dtypes; min and max with numpy.
    """
    target = np.asarray(target, np.int64)
    had = state.ints[target, G_COUNT] > 0
    has = other.ints[:, G_COUNT] > 0
    for mine, theirs, pick in (
        (state.vmin, other.vmin, np.minimum),
        (state.vmax, other.vmax, np.maximum),
    ):
        both = pick(mine[target], theirs)
        mine[target] = np.where(had & has, both, np.where(has, theirs, mine[target]))
    _merge_accumulators(state.ints, state.floats, other.ints, other.floats, target)


def group_result(state: GroupState, dtype: Any, groups: int | None = None) -> dict[str, Any]:
    """Per-group results (arrays over the first ``groups`` groups, default all).

    ``count``, ``nan_count`` (int64); ``sum`` (int64 / uint64 / float64 as in :func:`stats_result`;
    None for datetimes); ``mean``, ``std`` (float64, NaN where count is 0; None for datetimes);
    ``min``, ``max`` (the column's dtype; where count is 0 they hold NaN for floats, NaT for
    datetimes and 0 for integers: mask them with ``count``).
    """
    dtype = np.dtype(dtype)
    g = state.ints.shape[0] if groups is None else groups
    ints, floats = state.ints[:g], state.floats[:g]
    count = ints[:, G_COUNT].copy()
    empty = count == 0
    out: dict[str, Any] = {"count": count, "nan_count": ints[:, G_NAN].copy()}
    vmin, vmax = state.vmin[:g].copy(), state.vmax[:g].copy()
    if dtype.kind in "Mm":
        vmin[empty] = NAT
        vmax[empty] = NAT
        out["min"], out["max"] = vmin.view(dtype), vmax.view(dtype)
        out["sum"] = out["mean"] = out["std"] = None
        return out
    if dtype.kind == "f":
        vmin[empty] = np.nan
        vmax[empty] = np.nan
    else:
        vmin[empty] = 0
        vmax[empty] = 0
    out["min"], out["max"] = vmin.astype(dtype), vmax.astype(dtype)
    s, c = floats[:, G_FSUM], floats[:, G_FCOMP]
    total = np.where(np.isfinite(s), s + c, s)
    if dtype.kind == "f":
        out["sum"] = total
    elif dtype.kind == "u":
        out["sum"] = ints[:, G_ISUM].view(np.uint64).copy()
    else:
        out["sum"] = ints[:, G_ISUM].copy()
    n = np.maximum(count, 1)
    out["mean"] = np.where(empty, np.nan, total / n)
    with np.errstate(invalid="ignore"):
        std = np.sqrt(floats[:, G_M2] / n)
    std[~np.isfinite(total) & ~np.isnan(std)] = np.inf  # as in _std
    out["std"] = np.where(empty, np.nan, std)
    return out


# --- hashed group-by -------------------------------------------------------------------------

_FIB = np.uint64(0x9E3779B97F4A7C15)
MAX_LOAD = 0.7


@numba.njit(cache=True, nogil=True, **HELPER)
def _shift(capacity):
    """64 - log2(capacity): the shift that keeps the top bits of a 64-bit hash."""
    bits = 0
    while (1 << bits) < capacity:
        bits += 1
    return np.uint64(64 - bits)


@numba.njit(cache=True, nogil=True, **HELPER)
def _find_or_insert(table, gkeys, ng, key, shift):
    """(group id of ``key``, groups after it); id -1 when inserting would exceed ``len(gkeys)``.

    Fibonacci hashing (multiply by 2^64 / golden ratio, keep the top bits) spreads sequential
    and strided keys; linear probing keeps a probe within a cache line or two.
    """
    mask = table.shape[0] - 1
    s = np.int64((np.uint64(key) * _FIB) >> shift)
    while True:
        g = table[s, 1]
        if g < 0:
            if ng >= gkeys.shape[0]:
                return -1, ng
            table[s, 0] = key
            table[s, 1] = ng
            gkeys[ng] = key
            return ng, ng + 1
        if table[s, 0] == key:
            return g, ng
        s = (s + 1) & mask


@numba.njit(cache=True, nogil=True, **KERNEL)
def hash_insert(table, gkeys, meta, keys, ids):
    """Set ``ids[i]`` to the group id of ``keys[i]``, inserting new keys; returns how many keys
    were done (fewer than ``len(keys)`` when the table is full and must grow first).

    ``table`` (int64, capacity x 2, capacity a power of two): per slot the key and its group id,
    -1 for an empty slot. ``gkeys[g]`` is the key of group ``g``; ``meta[0]`` the number of groups,
    at most ``len(gkeys)`` (70% of capacity).
    """
    shift = _shift(table.shape[0])
    ng = meta[0]
    last_key = np.int64(0)
    last = -1  # runs of one key (sorted or clustered columns) skip the probe
    for i in range(keys.shape[0]):
        key = keys[i]
        if last < 0 or key != last_key:
            last, ng = _find_or_insert(table, gkeys, ng, key, shift)
            if last < 0:
                meta[0] = ng
                return i
            last_key = key
        ids[i] = last
    meta[0] = ng
    return keys.shape[0]


@numba.njit(cache=True, nogil=True, **KERNEL)
def hash_assign(table, gkeys, meta, keys, positions, ids):
    """``ids[row]`` = group id of ``keys[row]`` for the selected rows (other rows untouched),
    inserting new keys; False when the table filled up first (grow it and call again: keys
    already inserted are found again). Compiled once, whatever the value column's dtype."""
    if positions is None:
        return hash_insert(table, gkeys, meta, keys, ids) == keys.shape[0]
    taken = keys[positions]
    got = np.empty(taken.shape[0], np.int64)
    if hash_insert(table, gkeys, meta, taken, got) < taken.shape[0]:
        return False
    ids[positions] = got
    return True


def group_by_hash_update(
    keys: np.ndarray,
    values: np.ndarray,
    positions: np.ndarray | None,
    nat: bool,
    table: np.ndarray,
    gkeys: np.ndarray,
    meta: np.ndarray,
    ints: np.ndarray,
    floats: np.ndarray,
    vmin: np.ndarray,
    vmax: np.ndarray,
) -> bool:
    """Fold one chunk into a hashed group-by; False (nothing folded) when the table must grow.

    ``keys``: int64 group keys aligned with ``values`` (view other 8-byte keys as int64: Numba
    compares int64 with uint64 through float64, which would merge distinct large keys).
    ``table``, ``gkeys``, ``meta`` as in :func:`hash_insert`; the accumulators are a
    :class:`GroupState` over ``len(gkeys)`` groups, indexed by group id. Group ids are assigned
    for the whole chunk before anything is added, so on False the caller grows the table (keys
    already inserted stay valid) and calls again with the same chunk; :class:`HashGroupBy` does
    this. Keys whose values are all missing still form a group (count 0).

    Two nogil kernels: :func:`hash_assign` (keys to group ids), then
    :func:`group_by_dense_update` over the ids, so nothing hash-specific is compiled per dtype.
    """
    ids = np.empty(keys.shape[0], np.int64)
    if not hash_assign(table, gkeys, meta, keys, positions, ids):
        return False
    group_by_dense_update(ids, values, positions, nat, ints, floats, vmin, vmax)
    return True


@numba.njit(cache=True, nogil=True, **KERNEL)
def _rehash(table, gkeys, ngroups):
    """Insert the first ``ngroups`` keys of ``gkeys`` (ids 0..) into the empty ``table``."""
    shift = _shift(table.shape[0])
    mask = table.shape[0] - 1
    for g in range(ngroups):
        s = np.int64((np.uint64(gkeys[g]) * _FIB) >> shift)
        while table[s, 1] >= 0:
            s = (s + 1) & mask
        table[s, 0] = gkeys[g]
        table[s, 1] = g


class HashGroupBy:
    """A group-by over int64 keys of any range: :func:`group_by_hash_update` plus growth.

    Memory is bounded by the number of distinct keys: the table keeps at most 70% of its slots
    full, and the accumulators hold one row per group. Growing doubles the table and re-inserts
    the keys (their group ids, hence the accumulator rows, stay).
    """

    def __init__(self, dtype: Any, capacity: int = 1024) -> None:
        self.dtype = np.dtype(dtype)
        capacity = max(16, 1 << (int(capacity) - 1).bit_length())
        self.table = np.full((capacity, 2), -1, np.int64)
        self.gkeys = np.empty(int(capacity * MAX_LOAD), np.int64)
        self.meta = np.zeros(1, np.int64)
        self.state = new_group_state(len(self.gkeys), self.dtype)

    @property
    def ngroups(self) -> int:
        return int(self.meta[0])

    def _grow(self) -> None:
        capacity = self.table.shape[0] * 2
        groups = int(capacity * MAX_LOAD)
        ng = self.ngroups
        self.table = np.full((capacity, 2), -1, np.int64)
        gkeys = np.empty(groups, np.int64)
        gkeys[:ng] = self.gkeys[:ng]
        self.gkeys = gkeys
        _rehash(self.table, self.gkeys, ng)
        old, new = self.state, new_group_state(groups, self.dtype)
        for a, b in zip(old, new, strict=True):
            b[:ng] = a[:ng]
        self.state = new

    def update(
        self, keys: np.ndarray, values: np.ndarray, positions: np.ndarray | None, nat: bool
    ) -> None:
        """Fold one chunk (``keys`` aligned with ``values``), growing the table as needed.

        Keys of another integer or datetime type are taken as int64 (8-byte ones by their bits:
        uint64 keys above 2**63 then come out negative, and sort so, in :meth:`result`).
        """
        if keys.dtype != np.int64:
            keys = keys.view(np.int64) if keys.dtype.itemsize == 8 else keys.astype(np.int64)
        while not group_by_hash_update(
            keys, values, positions, nat, self.table, self.gkeys, self.meta, *self.state
        ):
            self._grow()

    def merge(self, other: HashGroupBy) -> None:
        """Fold another worker's group-by over the same column into this one."""
        ng = other.ngroups
        target = np.empty(ng, np.int64)
        done = 0
        while done < ng:
            done += hash_insert(
                self.table, self.gkeys, self.meta, other.gkeys[done:ng], target[done:]
            )
            if done < ng:
                self._grow()
        group_merge(self.state, GroupState(*(a[:ng] for a in other.state)), target)

    def result(self) -> dict[str, Any]:
        """:func:`group_result` with the groups sorted by key, keys under ``"key"``."""
        ng = self.ngroups
        out = group_result(self.state, self.dtype, ng)
        order = np.argsort(self.gkeys[:ng], kind="stable")
        res = {k: (None if v is None else v[order]) for k, v in out.items()}
        res["key"] = self.gkeys[:ng][order].copy()
        return res
