"""Generated fused kernels: numpy's semantics for every loop, the description checks, and the
on-disk cache (a second process loads machine code instead of compiling)."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest

from colvault.kernels.query import exprgen

NAT = np.iinfo(np.int64).min


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("kernels")


def run(cache: Path, node, columns, constants, mode="mask"):
    """Run a description over columns; ``mask`` returns the bool array, else the count/positions."""
    fn = exprgen.kernel(node, len(columns), len(constants), mode, cache_dir=cache)
    n = len(columns[0]) if columns else 4
    if mode == "count":
        return fn(n, *columns, *constants)
    out = np.empty(n, bool if mode == "mask" else np.int64)
    count = fn(n, *columns, *constants, out)
    if count < 0:
        return count
    return out if mode == "mask" else out[:count]


def col(j, dt):
    return ("col", j, np.dtype(dt).str)


def binary(op, dt, out=None):
    """``op(c0, c1) == c2`` over columns of ``dt`` (result dtype ``out``)."""
    out = out or dt
    res = (op, np.dtype(out).str, col(0, dt), col(1, dt))
    return ("==", "|b1", res, col(2, out))


def pairs(values, dt):
    a, b = zip(*itertools.product(values, repeat=2), strict=True)
    with np.errstate(over="ignore"):  # 1e300 as float32 is inf, as numpy casts it
        return np.array(a, dt), np.array(b, dt)


INT_EDGES = {
    "i1": [0, 1, -1, 2, -2, 7, -7, 127, -128, 3],
    "i8": [0, 1, -1, 2, -3, 7, -7, 2**63 - 1, -(2**63), 2**31],
    "u8": [0, 1, 2, 3, 7, 2**63, 2**64 - 1, 2**32 + 5],
    "u1": [0, 1, 2, 7, 128, 255],
}
INT_OPS = [
    ("+", np.add),
    ("-", np.subtract),
    ("*", np.multiply),
    ("//", np.floor_divide),
    ("%", np.remainder),
]
CMP_OPS = [
    ("<", np.less),
    ("<=", np.less_equal),
    (">", np.greater),
    (">=", np.greater_equal),
    ("==", np.equal),
    ("!=", np.not_equal),
]
FLOAT_EDGES = [0.0, -0.0, 1.0, -1.0, 2.5, -2.5, 7.0, -7.0, 1e300, -1e-300, 5e-324, np.inf, -np.inf]
FLOAT_EDGES += [np.nan, 0.1, 3.0]


@pytest.mark.parametrize("dt", sorted(INT_EDGES))
@pytest.mark.parametrize(
    "op,ufunc",
    INT_OPS,
)
def test_integer_arithmetic_wraps_and_divides_like_numpy(cache, dt, op, ufunc):
    a, b = pairs(INT_EDGES[dt], dt)
    with np.errstate(all="ignore"):
        expect = ufunc(a, b)
    got = run(cache, binary(op, dt), [a, b, expect], [])
    assert got.all(), list(zip(a[~got], b[~got], expect[~got], strict=True))


@pytest.mark.parametrize("dt", ["f2", "f4", "f8"])
@pytest.mark.parametrize(
    "op,ufunc",
    [*INT_OPS, ("/", np.true_divide)],
)
def test_float_arithmetic_like_numpy(cache, dt, op, ufunc):
    a, b = pairs(FLOAT_EDGES, dt)
    with np.errstate(all="ignore"):
        expect = ufunc(a, b)
        inv = np.divide(np.array(1, dt), expect)
    if dt == "f2":  # the kernel holds float16 values in float32 (no float16 arrays in Numba)
        a, b, expect, inv = (x.astype(np.float32) for x in (a, b, expect, inv))
    # NaN == NaN is false: compare the NaN pattern separately with isnan.
    node = (
        "or",
        "|b1",
        binary(op, dt),
        (
            "and",
            "|b1",
            *(
                ("isnan", "|b1", x)
                for x in ((op, np.dtype(dt).str, col(0, dt), col(1, dt)), col(2, dt))
            ),
        ),
    )
    got = run(cache, node, [a, b, expect], [])
    assert got.all(), list(zip(a[~got], b[~got], expect[~got], strict=True))
    # and signs of zeros, which == cannot see
    signs = (
        "==",
        "|b1",
        (
            "/",
            np.dtype(dt).str,
            ("const", 0, np.dtype(dt).str),
            (op, np.dtype(dt).str, col(0, dt), col(1, dt)),
        ),
        col(2, dt),
    )
    ok = run(cache, signs, [a, b, inv], [np.array(1, expect.dtype)[()]])
    assert (ok | np.isnan(inv)).all()


def test_float16_results_round_like_numpy(cache):
    x = np.array([0, 1, 2, 3, 5, 7, 100, 127, -1, -128], "i1")
    for fn, ufunc in [("sqrt", np.sqrt), ("floor", np.floor), ("neg", np.negative)]:
        with np.errstate(all="ignore"):
            expect = ufunc(x.astype(np.float16) if fn != "sqrt" else x)
        f2 = ("cast", "<f2", col(0, "i1"))
        node = ("==", "|b1", (fn, "<f2", f2), col(1, "f2"))
        got = run(cache, node, [x, expect.astype(np.float32)], [])
        assert (got | np.isnan(expect)).all(), fn
    # 2049 is not a float16: the sum rounds to even
    node = ("==", "|b1", ("+", "<f2", col(0, "f2"), ("const", 0, "<f2")), ("const", 1, "<f2"))
    got = run(cache, node, [np.array([2048, 2046], np.float32)], [np.float32(1), np.float32(2048)])
    np.testing.assert_array_equal(got, np.array([2048, 2046], np.float16) + np.float16(1) == 2048)


def test_integer_power_wraps_and_reports_negative_exponents(cache):
    a, b = pairs([0, 1, -1, 2, 3, -3, 7, 127, -128], "i1")
    keep = b >= 0
    a, b = a[keep], b[keep]
    expect = np.power(a, b)
    assert run(cache, binary("**", "i1"), [a, b, expect], []).all()
    bad = np.array([2, 3], "i1"), np.array([1, -1], "i1"), np.array([2, 0], "i1")
    for mode in exprgen.MODES:
        assert run(cache, binary("**", "i1"), list(bad), [], mode) == exprgen.ERR_NEGATIVE_POWER
    u = np.array([2, 3, 2**63], "u8"), np.array([64, 40, 2], "u8")
    assert run(cache, binary("**", "u8"), [*u, np.power(*u)], []).all()


def test_mixed_int64_uint64_comparisons_are_exact(cache):
    a = np.array([-1, 0, 1, 2**63 - 1, -(2**63), 5, 5], "i8")
    b = np.array([0, 0, 2**63, 2**64 - 1, 0, 5, 4], "u8")
    for op, ufunc in CMP_OPS:
        node = (op, "|b1", col(0, "i8"), col(1, "u8"))
        np.testing.assert_array_equal(run(cache, node, [a, b], []), ufunc(a, b), err_msg=op)
        node = (op, "|b1", col(1, "u8"), col(0, "i8"))
        np.testing.assert_array_equal(run(cache, node, [a, b], []), ufunc(b, a), err_msg=op)


def test_nat_compares_false_except_not_equal_and_units_convert(cache):
    s = np.array(["2025-01-01T00:00:01", "NaT", "2025-01-01T00:00:02", "NaT"], "M8[s]")
    ns = np.array(["2025-01-01T00:00:01", "2025-01-01", "NaT", "NaT"], "M8[ns]")
    for op, ufunc in [
        ("<", np.less),
        ("==", np.equal),
        ("!=", np.not_equal),
        (">=", np.greater_equal),
    ]:
        node = (op, "|b1", ("cast", "<M8[ns]", col(0, "M8[s]")), col(1, "M8[ns]"))
        got = run(cache, node, [s.view("i8"), ns.view("i8")], [])
        np.testing.assert_array_equal(got, ufunc(s, ns), err_msg=op)
    isnat = ("isnan", "|b1", col(0, "M8[s]"))
    np.testing.assert_array_equal(run(cache, isnat, [s.view("i8")], []), np.isnat(s))


def test_modes_agree_and_constants_are_arguments(cache):
    node = (">", "|b1", col(0, "f8"), ("const", 0, "<f8"))
    x = np.array([0.5, np.nan, 3.0, -1.0, 2.0])
    for k in (0.0, 1.0, 10.0):
        mask = run(cache, node, [x], [k])
        np.testing.assert_array_equal(mask, x > k)
        np.testing.assert_array_equal(run(cache, node, [x], [k], "select"), np.flatnonzero(x > k))
        assert run(cache, node, [x], [k], "count") == (x > k).sum()


def test_category_codes_and_lookup_tables(cache):
    codes = np.array([0, 1, 2, 1, 0], "u1")
    eq = ("catcode", "==", ("col", 0, "cat"), ("const", 0, "<i8"))
    np.testing.assert_array_equal(run(cache, eq, [codes], [np.int64(1)]), codes == 1)
    assert not run(cache, eq, [codes], [np.int64(-1)]).any()
    lut = ("catlut", ("col", 0, "cat"), ("const", 0, "lut"))
    table = np.array([True, False, True])
    np.testing.assert_array_equal(run(cache, lut, [codes], [table]), table[codes])


def test_bool_columns_as_uint8_or_bool_and_logic(cache):
    node = ("or", "|b1", ("not", "|b1", col(0, "?")), ("and", "|b1", col(0, "?"), col(1, "?")))
    a = np.array([True, True, False, False])
    b = np.array([True, False, True, False])
    expect = ~a | (a & b)
    np.testing.assert_array_equal(run(cache, node, [a, b], []), expect)
    np.testing.assert_array_equal(run(cache, node, [a.view("u1"), b.view("u1")], []), expect)


def test_constant_predicate_needs_no_columns(cache):
    node = ("const", 0, "|b1")
    assert run(cache, node, [], [True], "count") == 4
    assert run(cache, node, [], [False], "count") == 0


@pytest.mark.parametrize(
    "bad",
    [
        ("col", 0, "<f8; import os"),
        ("col", "0", "<f8"),
        ("col", 5, "<f8"),
        ("const", 0, "object"),
        ("__import__", "|b1", ("col", 0, "<f8")),
        (">", "|b1", ("col", 0, "<f8")),
        (">", "|b1; x", ("col", 0, "<f8"), ("col", 0, "<f8")),
        ("cast", "<c16", ("col", 0, "<f8")),
        ("catcode", "<", ("col", 0, "cat"), ("const", 0, "<i8")),
        [">", "|b1", ("col", 0, "<f8"), ("col", 0, "<f8")],
    ],
)
def test_descriptions_are_validated(bad):
    with pytest.raises(ValueError):
        exprgen.generate_source(bad, 1, 1)  # type: ignore[arg-type]


def test_root_must_be_boolean():
    with pytest.raises(ValueError, match="boolean"):
        exprgen.generate_source(("+", "<f8", col(0, "f8"), col(0, "f8")), 1, 0)


def test_generated_source_holds_positions_only():
    node = (
        "and",
        "|b1",
        (">", "|b1", col(0, "f8"), ("const", 0, "<f8")),
        ("==", "|b1", ("col", 1, "U"), ("const", 1, "U")),
    )
    src = exprgen.generate_source(node, 2, 2)
    assert "c0[i]" in src and "k1" in src
    compile(src, "<kernel>", "exec")


def test_kernel_modules_are_cached_on_disk_and_in_process(cache):
    node = ("<=", "|b1", col(0, "i4"), ("const", 0, "<i4"))
    fn = exprgen.kernel(node, 1, 1, "count", cache_dir=cache)
    assert exprgen.kernel(node, 1, 1, "count", cache_dir=cache) is fn
    name = exprgen.module_name(f"1:1:{exprgen.shape_text(node)}")
    assert name in sys.modules
    assert (cache / f"{name}.py").read_text().startswith("# Generated by colvault")
    assert not list(cache.glob(".*.tmp"))  # written under a temporary name, then renamed
    assert fn(3, np.array([1, 2, 3], "i4"), np.int32(2)) == 2


def test_default_cache_dir_follows_numba_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    assert exprgen.default_cache_dir() == tmp_path / "colvault-kernels"
    monkeypatch.delenv("NUMBA_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert exprgen.default_cache_dir() == tmp_path / "xdg" / "colvault" / "kernels"


def test_threads_get_one_kernel(cache):
    node = (">", "|b1", col(0, "i2"), ("const", 0, "<i2"))
    got: list[object] = []
    threads = [
        threading.Thread(target=lambda: got.append(exprgen.kernel(node, 1, 1, cache_dir=cache)))
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(f) for f in got}) == 1


CHILD = textwrap.dedent(
    """
    import json, sys, time
    import numpy as np
    t0 = time.perf_counter()
    from colvault.kernels.query import exprgen
    node = ("and", "|b1", (">", "|b1", ("col", 0, "<f8"), ("const", 0, "<f8")),
            ("<", "|b1", ("%", "<i8", ("col", 1, "<i8"), ("const", 1, "<i8")), ("const", 2, "<i8")))
    fn = exprgen.kernel(node, 2, 3, "select", cache_dir=sys.argv[1])
    x = np.arange(10.0); y = np.arange(10)
    out = np.empty(10, np.int64)
    t1 = time.perf_counter()
    n = fn(10, x, y, 2.5, np.int64(4), np.int64(2), out)
    t2 = time.perf_counter()
    print(json.dumps({"n": int(n), "hits": sum(fn.stats.cache_hits.values()),
                      "misses": sum(fn.stats.cache_misses.values()), "first_call": t2 - t1}))
    """
)


def test_second_process_loads_machine_code(tmp_path):
    import json

    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba"))
    runs = []
    for _ in range(2):
        res = subprocess.run(
            [sys.executable, "-c", CHILD, str(tmp_path / "kernels")],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        runs.append(json.loads(res.stdout.strip().splitlines()[-1]))
    first, second = runs
    assert first["n"] == second["n"] == 4  # rows 4, 5, 8, 9
    assert first["misses"] >= 1 and first["hits"] == 0
    assert second["hits"] >= 1 and second["misses"] == 0
    assert list((tmp_path / "numba").rglob("*.nbi"))
