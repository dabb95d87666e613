"""Round trip: whatever was committed reads back bit for bit, through every access path.

Random schemas (every supported dtype, n-d cells), random batch sizes (incl. 0 and 1), random
commit / abort / close-and-reopen points, tiny chunks and segments so that chunk cutting,
short chunks and segment roll-over all happen.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import colvault

DTYPES = [
    "?", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "f4", "f8", "c8", "c16",
    "M8[ns]", "M8[s]", "M8[D]", "m8[us]", "S5", "U4",
]  # fmt: skip
SHAPES = [(), (), (), (2,), (2, 3)]
ALPHABET = np.array(list("aZ0 é°\u4e2d\U0001f600"), dtype="U1")


def random_values(rng: np.random.Generator, dtype: np.dtype, shape: tuple, n: int) -> np.ndarray:
    """Values covering every bit pattern the dtype can hold (NaN payloads, NaT, subnormals)."""
    full = (n, *shape)
    count = int(np.prod(full))
    if dtype.kind == "b":
        return rng.integers(0, 2, full).astype(bool)
    if dtype.kind == "U":
        chars = rng.choice(ALPHABET, size=(count, dtype.itemsize // 4))
        lengths = rng.integers(0, dtype.itemsize // 4 + 1, count)
        words = ["".join(c[:k]) for c, k in zip(chars, lengths, strict=True)]
        return np.array(words, dtype=dtype).reshape(full)
    raw = rng.integers(0, 256, count * dtype.itemsize, dtype=np.uint8)
    return raw.view(dtype).reshape(full)


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


schemas = st.lists(
    st.tuples(st.sampled_from(DTYPES), st.sampled_from(SHAPES)), min_size=1, max_size=4
)
actions = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.sampled_from([0, 1, 2, 3, 5, 8, 13, 40])),
        st.tuples(st.just("commit"), st.just(0)),
        st.tuples(st.just("abort"), st.just(0)),
        st.tuples(st.just("reopen"), st.just(0)),
    ),
    max_size=14,
)


def as_input(rng: np.random.Generator, batch: dict[str, np.ndarray], dtype: np.dtype) -> object:
    """The same batch as a dict, a structured array or a list of row tuples."""
    form = rng.integers(0, 3)
    if form == 0:
        return batch
    n = len(next(iter(batch.values())))
    rec = np.empty(n, dtype)
    for k, v in batch.items():
        rec[k] = v
    return rec if form == 1 else [tuple(r) for r in rec]


@given(schemas, actions, st.integers(1, 7), st.integers(0, 2**32 - 1))
def test_committed_rows_read_back_bit_for_bit(tmp_path_factory, cols, steps, chunk_rows, seed):
    rng = np.random.default_rng(seed)
    schema = {f"c{i} {dt}": (dt, shape) for i, (dt, shape) in enumerate(cols)}
    path = str(tmp_path_factory.mktemp("rt") / "s.colvault")
    store = colvault.open(path, "w", segment_bytes=512)
    t = store.create_table("/g/t", schema, chunk_rows=chunk_rows)
    store.commit()
    committed: list[dict[str, np.ndarray]] = []
    pending: list[dict[str, np.ndarray]] = []
    try:
        for action, n in steps:
            if action == "append":
                batch = {
                    name: random_values(rng, np.dtype(dt), shape, n)
                    for name, (dt, shape) in schema.items()
                }
                t.append(as_input(rng, batch, t.schema))
                pending.append(batch)
            elif action == "commit":
                store.commit()
                committed += pending
                pending = []
            elif action == "abort":
                store.abort()
                pending = []
            else:
                store.close()
                committed += pending
                pending = []
                store = colvault.open(path, "a", segment_bytes=512)
                t = store["/g/t"]
            nrows = sum(len(next(iter(b.values()))) for b in committed)
            assert len(t) == nrows
            assert t.pending_rows == sum(len(next(iter(b.values()))) for b in pending)
    finally:
        store.close()
    committed += pending  # close() commits
    with colvault.open(path) as store:
        t = store["/g/t"]
        everything = t.read()
        assert len(everything) == len(t)
        for name in schema:
            parts = [b[name] for b in committed]
            want = np.concatenate(parts) if parts else everything[name][:0]
            assert same_bits(everything[name], want), name
            assert same_bits(t.cols[name][:], want)
            if len(want):
                chunks = [c[name] for c in t.iter_chunks([name])]
                assert same_bits(np.concatenate(chunks), want)
                rows = rng.integers(-len(want), len(want), 7)
                assert same_bits(t.cols[name][rows], want[rows])
                assert same_bits(t.cols[name][1::3], want[1::3])
                assert same_bits(t.cols[name][::-2], want[::-2])
        assert store.verify().ok


@given(st.sampled_from(DTYPES), st.sampled_from(SHAPES), st.lists(st.integers(0, 9), max_size=6))
def test_array_round_trip(tmp_path_factory, dt, shape, sizes):
    rng = np.random.default_rng(len(sizes))
    path = str(tmp_path_factory.mktemp("arr") / "s.colvault")
    parts = [random_values(rng, np.dtype(dt), shape, n) for n in sizes]
    with colvault.open(path, "w") as store:
        a = store.create_array("/a", dt, inner_shape=shape, chunk_rows=4)
        for p in parts:
            a.append(p)
    want = np.concatenate(parts) if parts else np.empty((0, *shape), dt)
    with colvault.open(path) as store:
        a = store["/a"]
        assert a.shape == want.shape
        assert same_bits(a[:], want)
        assert same_bits(a[...], want)
        if len(want):
            assert same_bits(np.asarray(a[-1]), np.asarray(want[-1]))
            if shape:
                assert same_bits(a[:, 0], want[:, 0])
