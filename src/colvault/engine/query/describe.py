"""``Table.describe``: pandas' ``DataFrame.describe()`` of a table, streamed in bounded memory.

count, mean and std come from the streaming column statistics
(:func:`.aggregate.selection_stats`), min and max too (mean and std agree with pandas' to
rounding: the sums run in another order). The quartiles are exact: pandas takes them from
``numpy.quantile`` (linear interpolation between the order statistics ``x[i]`` and ``x[i + 1]``,
``i = floor((n - 1) q)``), so we find those order statistics without holding the column, by
histogram refinement:

- Every non-NaN value is mapped to an order-preserving unsigned 64-bit key (floats by their
  bits, the sign bit flipped for positives and every bit for negatives; signed integers with the
  sign bit flipped). Keys compare as the values do, and binning them is exact integer work: no
  float edge can put a value in a neighbouring bin.
- Keys are counted from the smallest, ``low`` (offsets ``key - low``). A *node* is the set of
  keys whose offsets share their high bits (``offset >> shift == prefix``), with its count and
  the ranks wanted in it. The first node holds every key; its ``shift`` is the bit length of
  ``high - low``, so that a column of -1000 to 1000 needs one 11-bit pass, not six.
- Each pass over the column histograms every open node on its next :data:`BITS` bits (4096
  bins), and each wanted rank moves to the bin in which its cumulated count falls, a node
  ``BITS`` bits narrower. In the same pass, nodes holding few enough keys (at most ``cap`` in
  all, :data:`CAP` by default) are collected and sorted instead, and nodes whose keys are all
  equal (``shift == 0``) need no pass at all.

A 64-bit key needs at most ``ceil(64 / BITS)`` histogram passes, in practice one or two before
the bins are small enough to collect. Memory is bounded by the histograms (4096 counts per open
node, at most 6 nodes) and ``cap`` keys, whatever the table size.

The quartile is then computed by ``numpy.quantile`` itself (as pandas calls it) on the two
order statistics: with ``n`` values its virtual index is ``(n - 1) q``, exact in float64 for
q = 0.25, 0.5, 0.75, and on ``[x[i], x[i + 1]]`` at ``frac((n - 1) q)`` numpy interpolates with
the same weight and the same arithmetic (dtype, rounding, ``inf - inf``), so the result is
numpy's, bit for bit. pandas then rounds it to a float32 column's dtype when NaN were skipped.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np

from ...errors import QueryError
from ...progress import bar as progress_bar
from ..schema import ColumnSpec
from .aggregate import selection_stats
from .selection import Selection

if TYPE_CHECKING:
    from ..records import TableView

Piece = tuple[list[np.ndarray], list[np.ndarray]]
"""What one piece of a pass gives: histograms of the nodes refined, keys of those collected."""
Pass = Callable[[Callable[[np.ndarray], Piece]], Iterator[Piece]]
"""One pass over the keys: ``fn`` applied to each piece of them, the results yielded."""

ROWS = ("count", "mean", "std", "min", "25%", "50%", "75%", "max")
QUARTILES = (0.25, 0.5, 0.75)
BITS = 12
"""Bits of the key resolved by one histogram pass (4096 bins)."""
CAP = 1 << 18
"""Keys collected in one pass, at most (2 MiB): nodes this small are sorted, not refined."""

_SIGN = np.uint64(1 << 63)


def describable(spec: ColumnSpec) -> bool:
    """Whether ``describe`` covers the column: scalar int, uint and float columns."""
    return not spec.shape and not spec.is_category and spec.dtype.kind in "iuf"


def keys_of(values: np.ndarray) -> np.ndarray:
    """Order-preserving uint64 keys of the non-NaN ``values`` (NaN dropped)."""
    kind = values.dtype.kind
    if kind == "f":
        v = np.ascontiguousarray(values, dtype=np.float64)  # exact for float32
        bits = v[~np.isnan(v)].view(np.uint64)
        return np.where(bits >= _SIGN, ~bits, bits | _SIGN)
    if kind == "i":
        return np.ascontiguousarray(values, dtype=np.int64).view(np.uint64) ^ _SIGN
    if kind == "u":
        return np.asarray(values, dtype=np.uint64)
    raise TypeError(f"no order keys for {values.dtype}")


def value_of(key: int, dtype: np.dtype) -> Any:
    """The value of ``dtype`` whose key (:func:`keys_of`) is ``key``."""
    k = np.array([key], np.uint64)
    if dtype.kind == "f":
        bits = k ^ _SIGN if key >= 1 << 63 else ~k
        return bits.view(np.float64).astype(dtype)[0]
    if dtype.kind == "i":
        return (k ^ _SIGN).view(np.int64).astype(dtype)[0]
    return k.astype(dtype)[0]


@dataclass
class _Node:
    """Keys whose offsets ``k`` have ``k >> shift == prefix`` (all when ``shift`` is 64); ``ranks``:
    the wanted ranks, each as (rank among all keys, rank from the node's smallest key)."""

    prefix: int
    shift: int
    count: int
    ranks: list[tuple[int, int]] = field(default_factory=list)

    def mask(self, keys: np.ndarray) -> np.ndarray | None:
        """Which of ``keys`` are in the node (None: all of them)."""
        if self.shift >= 64:
            return None
        return (keys >> np.uint64(self.shift)) == np.uint64(self.prefix)

    def take(self, keys: np.ndarray) -> np.ndarray:
        mask = self.mask(keys)
        return keys if mask is None else keys[mask]


@dataclass
class Trace:
    """What a refinement did: per pass, the nodes histogrammed and the keys collected."""

    passes: list[tuple[int, int]] = field(default_factory=list)  # (histogrammed, collected)

    @property
    def most_collected(self) -> int:
        return max((c for _, c in self.passes), default=0)


def order_statistics(
    run_pass: Pass,
    count: int,
    low: int,
    high: int,
    ranks: Sequence[int],
    *,
    cap: int = CAP,
    bits: int = BITS,
    trace: Trace | None = None,
) -> dict[int, int]:
    """The keys at ``ranks`` (0-based, in sorted order) among ``count`` keys from ``low`` to
    ``high``, by histogram refinement (see the module docstring).

    ``run_pass(fn)`` makes one pass over the keys: it calls ``fn`` on each piece of them (a
    uint64 array) and yields what ``fn`` returns, in any order. No pass collects more than
    ``cap`` keys; ``bits`` (1 to 16) is the resolution of one histogram pass.
    """
    if not 1 <= bits <= 16:
        raise ValueError(f"bits must be from 1 to 16, not {bits}")
    if cap < 0:
        raise ValueError(f"cap must be at least 0, not {cap}")
    wanted = sorted(set(ranks))
    if any(not 0 <= r < count for r in wanted):
        raise ValueError(f"ranks {wanted} out of range for {count} keys")
    found: dict[int, int] = {}
    if low > high:
        raise ValueError(f"low {low} is above high {high}")
    root = _Node(0, (high - low).bit_length(), count, [(r, r) for r in wanted])
    pending = [root] if wanted else []
    while pending:
        open_nodes = []
        for node in pending:
            if node.shift == 0:  # every key in it is the same
                for r, _ in node.ranks:
                    found[r] = low + node.prefix
            else:
                open_nodes.append(node)
        if not open_nodes:
            break
        collect: list[_Node] = []
        refine: list[_Node] = []
        budget = cap
        for node in sorted(open_nodes, key=lambda n: n.count):
            if node.count <= budget:
                collect.append(node)
                budget -= node.count
            else:
                refine.append(node)
        widths = [min(bits, node.shift) for node in refine]

        piece = partial(_piece, low, refine, widths, collect)
        totals = [np.zeros(1 << b, np.int64) for b in widths]
        held = [np.empty(node.count, np.uint64) for node in collect]
        filled = [0] * len(collect)
        for hists, got in run_pass(piece):
            for total, h in zip(totals, hists, strict=True):
                total += h
            for i, g in enumerate(got):
                if filled[i] + len(g) > len(held[i]):
                    raise RuntimeError("describe: a pass met more keys than the first")
                held[i][filled[i] : filled[i] + len(g)] = g
                filled[i] += len(g)
        if trace is not None:
            trace.passes.append((len(refine), sum(filled)))
        for node, keys, n in zip(collect, held, filled, strict=True):
            if n != node.count:
                raise RuntimeError("describe: a pass met fewer keys than the first")
            keys.sort()
            for r, within in node.ranks:
                found[r] = low + int(keys[within])
        del held
        pending = []
        for node, b, total in zip(refine, widths, totals, strict=True):
            cum = np.cumsum(total)
            if int(cum[-1]) != node.count:
                raise RuntimeError("describe: a pass met another number of keys than the first")
            children: dict[int, _Node] = {}
            for r, within in node.ranks:
                d = int(np.searchsorted(cum, within, side="right"))  # the bin past the rank
                before = int(cum[d - 1]) if d else 0
                child = children.get(d)
                if child is None:
                    prefix = (node.prefix << b) | d
                    child = children[d] = _Node(prefix, node.shift - b, int(total[d]))
                child.ranks.append((r, within - before))
            pending.extend(children.values())
    return found


def _piece(
    low: int, refine: list[_Node], widths: list[int], collect: list[_Node], keys: np.ndarray
) -> Piece:
    """One piece of a pass: the histograms of the nodes refined, the offsets (``key - low``)
    of the keys of those collected."""
    keys = keys - np.uint64(low)
    hists = []
    for node, b in zip(refine, widths, strict=True):
        sub = node.take(keys)
        digits = (sub >> np.uint64(node.shift - b)) & np.uint64((1 << b) - 1)
        hists.append(np.bincount(digits.astype(np.intp), minlength=1 << b))
    return hists, [node.take(keys) for node in collect]


def quartile_ranks(n: int) -> list[int]:
    """The order statistics numpy's linear quartiles of ``n`` values interpolate between."""
    out: set[int] = set()
    for q in QUARTILES:
        i = math.floor((n - 1) * q)
        out.update((i, min(i + 1, n - 1)))
    return sorted(out)


def quartiles(n: int, at: Mapping[int, Any], dtype: np.dtype, nan: bool = False) -> list[float]:
    """pandas' linear quartiles of ``n`` values whose order statistics ``at`` has (rank → value
    of ``dtype``): ``numpy.quantile``'s, computed by it on two of them. pandas rounds them to
    the column's dtype when it had NaN (``nan``) to skip, and only then: a float32 column's
    quartiles are float32 values if it had NaN, float64 ones otherwise; so do we."""
    out = []
    for q in QUARTILES:
        with np.errstate(invalid="ignore"):  # inf - inf is NaN in numpy's interpolation too
            p = _quartile(n, at, dtype, q)
        out.append(float(p.astype(dtype) if nan and dtype.kind == "f" else p))
    return out


def _quartile(n: int, at: Mapping[int, Any], dtype: np.dtype, q: float) -> Any:
    if n == 1:
        return np.quantile(np.array([at[0]], dtype), np.array([q]))[0]
    h = (n - 1) * q  # numpy's virtual index, exact
    i = math.floor(h)
    pair = np.array([at[i], at[i + 1]], dtype)
    return np.quantile(pair, np.array([h - i]))[0]  # on two values the index is h - i


class _Progress:
    """The describe bar, in chunks read: each column's passes (three estimated)."""

    def __init__(self, sel: Selection, columns: int, show: bool | None, path: str) -> None:
        self.chunks = max(len(sel.chunks), 1)
        self.left = columns
        self.bar = progress_bar(3 * columns * self.chunks, "chunks", f"describe {path}", show)

    def step(self) -> None:
        self.bar.update(1)

    def end_pass(self, start: int) -> None:
        """Account for a whole pass, whatever number of pieces it had."""
        self.bar.update(max(start + self.chunks - self.bar.n, 0))
        if self.bar.n >= self.bar.total:  # more passes than guessed
            self.bar.total = self.bar.n + self.chunks
            self.bar.refresh()

    def end_column(self) -> None:
        self.left -= 1
        self.bar.total = self.bar.n + 3 * self.left * self.chunks
        self.bar.refresh()


def _key_passes(sel: Selection, spec: ColumnSpec, progress: _Progress) -> Pass:
    """One pass over the keys of ``spec``'s selected values: chunks in the pool, a window at a
    time (every row), or the condition's batches."""

    def run(fn: Callable[[np.ndarray], Piece]) -> Iterator[Piece]:
        start = progress.bar.n
        if sel.plan is not None:
            for got in sel.selected_values(spec):
                yield fn(keys_of(got))
                progress.step()
        else:

            def part(pos: int) -> Piece | None:
                rows = sel.rows(pos)
                if rows is None:
                    return None
                got, at = sel.selected(spec, pos, rows)
                return fn(keys_of(got if at is None else got[at]))

            for result in sel.fold(part):
                yield result
                progress.step()
        progress.end_pass(start)

    return run


def describe_column(
    sel: Selection, spec: ColumnSpec, progress: _Progress, *, cap: int = CAP, bits: int = BITS,
    trace: Trace | None = None,
) -> list[float]:  # fmt: skip
    """count, mean, std (ddof 1), min, 25%, 50%, 75% and max of one column, as pandas."""
    start = progress.bar.n
    s = selection_stats(sel, spec)
    progress.end_pass(start)
    n = s["count"]
    if n == 0:
        return [0.0] + [math.nan] * 7
    std = math.nan if n < 2 else float(s["std"]) * math.sqrt(n / (n - 1))
    lo, hi = s["min"], s["max"]
    # -0.0 and 0.0 are equal, so min and max may name either; their keys differ (-0.0 first)
    low = int(keys_of(np.array([-0.0 if lo == 0 else lo], spec.dtype))[0])
    high = int(keys_of(np.array([0 if hi == 0 else hi], spec.dtype))[0])
    ranks = quartile_ranks(n)
    keys = order_statistics(
        _key_passes(sel, spec, progress), n, low, high, ranks, cap=cap, bits=bits, trace=trace
    )
    at = {r: value_of(k, spec.dtype) for r, k in keys.items()}
    qs = quartiles(n, at, spec.dtype, nan=s["nan_count"] > 0)
    return [float(n), float(s["mean"]), std, float(lo), *qs, float(hi)]


def describe(
    view: TableView, columns: Sequence[str] | None = None, *, where: str | None = None,
    condvars: Mapping[str, Any] | None = None, progress: bool | None = None,
    cap: int = CAP, bits: int = BITS, trace: Trace | None = None,
) -> Any:  # fmt: skip
    """:meth:`Table.describe <colvault.Table.describe>`; ``cap``, ``bits`` and ``trace`` as
    :func:`order_statistics` takes them (tests use a small ``cap`` to see it kept)."""
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("describe() needs pandas: pip install pandas") from None
    if columns is None:
        specs = [s for s in view.schema.columns if describable(s)]
        if not specs:
            raise QueryError(
                f"describe() found no int, uint or float column in {view.path}: its columns "
                f"are {view.colnames}"
            )
    else:
        if isinstance(columns, str):
            columns = [columns]
        specs = [view.schema.column(c) for c in columns]
        for s in specs:
            if not describable(s):
                what = "category" if s.is_category else str(np.dtype((s.dtype, s.shape)))
                raise QueryError(
                    f"describe() covers int, uint and float columns; {s.name!r} is {what}"
                )
    sel = Selection(view, where, condvars)  # every pass reads this snapshot
    bar = _Progress(sel, len(specs), progress, view.path)
    data = {}
    try:
        for spec in specs:
            data[spec.name] = describe_column(sel, spec, bar, cap=cap, bits=bits, trace=trace)
            bar.end_column()
    finally:
        bar.bar.close()
    return pd.DataFrame(data, index=list(ROWS), columns=[s.name for s in specs], dtype=np.float64)


__all__ = ["BITS", "CAP", "ROWS", "Trace", "describe", "order_statistics"]
