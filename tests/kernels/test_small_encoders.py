"""The numpy versions of the table's encoders (taken for small chunks while a kernel is not
compiled) give exactly what the kernels give."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from types import ModuleType

import numba
import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from colvault.kernels import compiling
from colvault.kernels.encoding import dictionary as dictenc
from colvault.kernels.encoding import intpack

UNSIGNED = [np.uint8, np.uint16, np.uint32, np.uint64]


@contextlib.contextmanager
def numpy_path(module: ModuleType, on: bool) -> Iterator[None]:
    real = compiling.would_compile
    compiling.would_compile = lambda *args: on
    try:
        yield
    finally:
        compiling.would_compile = real


def both(module: ModuleType, call):
    """call() with the kernel, then with the numpy version."""
    out = []
    for on in (False, True):
        with numpy_path(module, on):
            out.append(call())
    return out


def narrower(dtype) -> st.SearchStrategy:
    """An unsigned type no wider than ``dtype``: what the encoders narrow into."""
    width = np.dtype(dtype).itemsize
    return st.sampled_from([t for t in UNSIGNED if np.dtype(t).itemsize <= width])


@given(st.sampled_from(UNSIGNED), st.data())
def test_frame_of_reference(dtype, data):
    narrow = data.draw(narrower(dtype))
    values = data.draw(arrays(dtype, st.integers(1, 200)))
    base = dtype(data.draw(st.integers(0, int(np.iinfo(dtype).max))))

    def encode():
        out = np.zeros(len(values), narrow)
        intpack.for_encode(values, base, out)
        return out

    kernel, numpy = both(intpack, encode)
    assert kernel.tobytes() == numpy.tobytes()


@given(st.sampled_from(UNSIGNED), st.booleans(), st.data())
def test_delta(dtype, ordered, data):
    narrow = data.draw(narrower(dtype))
    values = data.draw(arrays(dtype, st.integers(2, 200)))
    if ordered:
        values = np.sort(values)
    kernel, numpy = both(intpack, lambda: intpack.delta_span(values))
    assert kernel == numpy and all(isinstance(v, int) for v in numpy)
    step = dtype(kernel[0])

    def encode():
        out = np.full(len(values), 7, narrow)
        intpack.delta_encode(values, step, out)
        return out

    kernel, numpy = both(intpack, encode)
    assert kernel.tobytes() == numpy.tobytes()


@given(st.integers(1, 4), st.data())
def test_dictionary_of_rows(width, data):
    rows = data.draw(arrays(np.uint32, st.tuples(st.integers(1, 60), st.just(width)),
                            elements=st.integers(0, 3)))  # fmt: skip
    kernel, numpy = both(dictenc, lambda: dictenc.dict_encode(rows))
    for a, b in zip(kernel, numpy, strict=True):
        assert a.dtype == b.dtype == np.int64 and a.tolist() == b.tolist()


@given(st.integers(1, 9), st.data())
def test_renumbered_codes(ndict, data):
    codes = data.draw(arrays(np.int64, st.integers(1, 80), elements=st.integers(0, ndict - 1)))
    kernel, numpy = both(dictenc, lambda: dictenc.renumber(codes, ndict))
    for a, b in zip(kernel, numpy, strict=True):
        assert a.dtype == b.dtype == np.int64 and a.tolist() == b.tolist()


def test_would_compile_until_compiled():
    @numba.njit
    def twice(x):
        return 2 * x

    values = np.arange(3)
    assert compiling.would_compile(twice, values)
    twice(values)
    assert not compiling.would_compile(twice, values)
    assert compiling.would_compile(twice, 1.5)  # another type: another compile
    assert not compiling.would_compile(lambda x: x, values)  # not a dispatcher: no compile
