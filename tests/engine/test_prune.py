"""Zone-map verdicts are never wrong: "none" chunks hold no match, "all" chunks only matches."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import colvault
from colvault.engine.query.parse import parse
from colvault.engine.query.predicate import evaluate
from colvault.engine.query.prune import ALL, NONE, SOME, classify_chunks

OPS = ["<", "<=", ">", ">=", "==", "!="]


@given(
    st.sampled_from(["f8", "i4", "M8[s]", "u8"]),
    st.lists(st.tuples(st.sampled_from(OPS), st.integers(-5, 25)), min_size=1, max_size=3),
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
    mask = np.broadcast_to(evaluate(expr, {"x": x}), (n,))  # numpy's answer, not colvault's
    for i, v in enumerate(verdicts):
        part = mask[i * chunk : (i + 1) * chunk]
        assert v in (NONE, SOME, ALL)
        if v == NONE:
            assert not part.any(), (i, cond)
        if v == ALL:
            assert part.all(), (i, cond)
