"""The append kernel's zone maps agree with numpy on every dtype, NaN and NaT included."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from colvault.engine.schema import ColumnSpec
from colvault.engine.zonemaps import compute, decode_bound
from colvault.kernels.encoding import zonenumpy

NUMERIC = ["?", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "f4", "f8", "M8[ns]", "m8[s]"]


@given(st.sampled_from(NUMERIC), st.data())
def test_zone_map_matches_numpy(dt, data):
    dtype = np.dtype(dt)
    n = data.draw(st.integers(1, 50))
    if dtype.kind in "Mm":
        ints = data.draw(hnp.arrays(np.int64, n))
        values = ints.view(dtype)
    elif dtype.kind == "f":
        values = data.draw(hnp.arrays(dtype, n, elements=st.floats(width=dtype.itemsize * 8)))
    else:
        values = data.draw(hnp.arrays(dtype, n))
    if data.draw(st.booleans()):
        values = np.sort(values)
    spec = ColumnSpec("c", "c", dtype)
    zone = compute(values, spec)
    missing = np.isnan(values) if dtype.kind in "fMm" else np.zeros(n, bool)
    valid = values[~missing]
    assert zone.nan_count == int(missing.sum())
    if len(valid):
        assert decode_bound(zone.min, spec) == valid.min()
        assert decode_bound(zone.max, spec) == valid.max()
    else:
        assert zone.min is None and zone.max is None
    sorted_ = not missing.any() and bool(np.all(valid[1:] >= valid[:-1]))
    assert zone.sorted == sorted_


def test_no_zone_map_for_text_complex_and_cells():
    for spec in (
        ColumnSpec("c", "c", np.dtype("U3")),
        ColumnSpec("c", "c", np.dtype("c8")),
        ColumnSpec("c", "c", np.dtype("f8"), (2,)),
    ):
        assert compute(np.zeros((3, *spec.shape), spec.dtype), spec).min is None


@given(st.sampled_from(["f8", "f4", "i8", "i4", "u8", "u2", "M8[ns]"]), st.data())
def test_numpy_zone_map_equals_the_kernel(dt, data):
    """What a process without the compiled kernel computes, and what small chunks get (in
    their own dtype, not widened), is the kernel's zone map."""
    from colvault.kernels.encoding import zonemap

    dtype = np.dtype(dt)
    n = data.draw(st.integers(1, 50))
    if dtype.kind == "f":
        values = data.draw(
            hnp.arrays(
                dtype, n, elements=st.floats(width=dtype.itemsize * 8, allow_subnormal=False)
            )
        )
    else:
        values = data.draw(hnp.arrays(np.int64 if dtype.kind == "M" else dtype, n))
    if data.draw(st.booleans()):
        values = np.sort(values)
    nat = dtype.kind == "M"
    wide = values.astype(np.float64 if dtype.kind == "f" else np.uint64 if dt == "u8" else np.int64)
    got = zonenumpy.stats(values if data.draw(st.booleans()) else wide, nat)
    want = zonemap._stats(wide, nat)
    assert got[2:] == want[2:]
    if got[4]:  # bounds mean something only with a valid value
        assert got[0] == want[0] and got[1] == want[1]
