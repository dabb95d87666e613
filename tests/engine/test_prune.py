"""Zone-map verdicts are never wrong: "none" chunks hold no match, "all" chunks only matches.
And they are as decisive as a chunk's min, max and NaN count allow."""

from __future__ import annotations

from functools import reduce

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import colvault
from colvault.engine.query.parse import parse
from colvault.engine.query.prune import ALL, NONE, SOME, classify_chunks

OPS = {
    "<": np.less,
    "<=": np.less_equal,
    ">": np.greater,
    ">=": np.greater_equal,
    "==": np.equal,
    "!=": np.not_equal,
}


def verdict(hits: np.ndarray) -> int:
    """The verdict a chunk's rows earn: every row matches, none does, or some do."""
    return ALL if hits.all() else NONE if not hits.any() else SOME


def zone_verdict(op: str, part: np.ndarray, c: object) -> int:
    """What a chunk's min, max and NaN count decide about ``part <op> c``. For an order
    comparison that is the rows' own verdict. ``==`` and ``!=`` are decided by the rows too,
    except when ``c`` lies between min and max but equals no value: a zone map cannot see that
    gap between values."""
    with np.errstate(invalid="ignore"):
        hits = OPS[op](part, c)
    v = verdict(hits)
    valid = part[~np.isnat(part)] if part.dtype.kind == "M" else part[~np.isnan(part)]
    gap = v == (NONE if op == "==" else ALL) and len(valid) and valid.min() <= c <= valid.max()
    return SOME if op in ("==", "!=") and gap else v


@given(
    st.sampled_from(["f8", "i4", "M8[s]", "u8"]),
    st.lists(st.tuples(st.sampled_from(list(OPS)), st.integers(-5, 25)), min_size=1, max_size=3),
    st.sampled_from(["&", "|"]),
    st.booleans(),
    st.integers(0, 2**32 - 1),
)
def test_verdicts_agree_with_the_rows(tmp_path_factory, dt, leaves, join, negate, seed):
    rng = np.random.default_rng(seed)
    n, chunk = 200, 16
    values = np.sort(rng.integers(0, 20, n)) if rng.integers(0, 2) else rng.integers(0, 20, n)
    x = values.astype(dt) if dt != "M8[s]" else values.astype("M8[s]")
    if dt == "f8":
        x[rng.integers(0, n, 6)] = np.nan
        x[:chunk] = np.nan  # one chunk of NaN only
    if dt == "M8[s]":
        x[rng.integers(0, n, 6)] = np.datetime64("NaT")
    consts = [c if dt != "u8" else abs(c) for _, c in leaves]
    lit = (lambda c: f'"{np.datetime64(int(c), "s")}"') if dt == "M8[s]" else str
    cond = f" {join} ".join(f"(x {op} {lit(c)})" for (op, _), c in zip(leaves, consts, strict=True))
    if negate:
        cond = f"~({cond})"
    path = str(tmp_path_factory.mktemp("p") / "p.colvault")
    with colvault.open(path, "w") as store:
        t = store.create_table("/t", {"x": dt}, chunk_rows=chunk)
        t.append({"x": x})
        store.commit()
        expr = parse(cond, {"x": np.dtype(dt)})
        verdicts = classify_chunks(expr, t._state(), {"x": t._schema.column("x")})

    # The answer from numpy alone: each comparison on the column's values, then & | ~.
    scalars = [np.datetime64(int(c), "s") if dt == "M8[s]" else c for c in consts]
    comparisons = [(op, c) for (op, _), c in zip(leaves, scalars, strict=True)]
    with np.errstate(invalid="ignore"):
        hits = [OPS[op](x, c) for op, c in comparisons]
    mask = reduce(np.logical_and if join == "&" else np.logical_or, hits)
    if negate:
        mask = ~mask
    # What zone maps decide per chunk: each comparison's verdict, combined as three values
    # (& the smaller, | the larger, ~ swaps none and all).
    combine = min if join == "&" else max

    assert len(verdicts) == -(-n // chunk)
    for i, v in enumerate(verdicts):
        part = x[i * chunk : (i + 1) * chunk]
        rows = mask[i * chunk : (i + 1) * chunk]
        decided = reduce(combine, (zone_verdict(op, part, c) for op, c in comparisons))
        if negate:
            decided = ALL + NONE - decided
        assert v in (NONE, SOME, ALL)
        if v == NONE:
            assert not rows.any(), (i, cond, part)
        if v == ALL:
            assert rows.all(), (i, cond, part)
        if decided != SOME:  # the zone map tells: an undecided "some" would read for nothing
            assert v == decided, (i, cond, part, int(v), decided)
