"""Zone-map pruning of tables of a few chunks, chunk by chunk: the same answers as with numpy."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from colvault.engine.query import prune

OPS = ["<", "<=", ">", ">=", "==", "!="]


@st.composite
def zones(draw, dtype: str) -> SimpleNamespace:
    n = draw(st.integers(1, prune.SMALL))
    if dtype == "f8":
        value = st.floats(-1e6, 1e6, allow_nan=False) | st.sampled_from([0.0, -0.0, np.inf])
    else:
        value = st.integers(-50, 50)
    lo, hi = [], []
    for _ in range(n):
        a, b = sorted([draw(value), draw(value)])
        lo.append(a)
        hi.append(b)
    return SimpleNamespace(
        known=np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), bool),
        valid=np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), bool),
        missing=np.array(draw(st.lists(st.integers(0, 3), min_size=n, max_size=n)), np.int64),
        lo=np.array(lo, dtype),
        hi=np.array(hi, dtype),
    )


@settings(max_examples=300, deadline=None)
@given(
    z=zones("i8") | zones("f8"),
    op=st.sampled_from(OPS),
    c=st.integers(-60, 60) | st.floats(-100, 100, allow_nan=False) | st.just(2**70),
)
def test_chunk_by_chunk_equals_numpy(z, op, c):
    want = prune._leaf_arrays(op, z, c)
    got = [prune._one(op, z, i, c) for i in range(len(z.known))]
    assert got == want.tolist()
