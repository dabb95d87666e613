"""``compact()`` interrupted by a power cut, an I/O error or ``kill -9`` leaves the store as
before or after it.

Compaction changes no value and no row count, only where the bytes live. So whatever step it is
interrupted at, the reopened store must read back exactly the logical state it had before (every
node, its attributes and pickled objects, every column value bit for bit), pass ``verify()``,
and hold exactly the manifest from before the compaction or the one from after it, never a
mixture. The next ``compact()`` must then succeed and leave nothing unreferenced
(``verify().info == []``).

- Power cut and EIO: ``test_powercut.RecordingSeam`` counts the seam calls of one ``compact()``
  (file creations, writes, fsyncs, directory fsyncs, the sqlite ``COMMIT``). The test cuts the
  power, or fails with EIO, at step k, for every k. It then simulates the power loss: files are
  truncated to their durable size and entries that no directory fsync made durable are deleted.
  Then it reopens the store. The old segment files that compaction deletes after its COMMIT go
  through ``os.unlink``, not the seam, so a cut after the COMMIT is the state "after", with the
  old files still there.
- kill -9: a child process (``_child_compact.py``) compacts a store holding a few MB in many
  short chunks. The test kills it at a seeded random moment within the time a compaction takes,
  many times, and checks that at least half of the kills landed inside a compaction, before its
  commit point. ``COLVAULT_CRASH_SEED`` replays a run (its delays, as fractions of the time a
  compaction takes here); ``COLVAULT_CRASH_KILLS`` sets how many kills.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import colvault
from colvault.engine import seam as seam_mod
from colvault.engine.manifest import ChunkRef
from colvault.engine.nodes import DataNode

from ._spawn import Child
from .test_powercut import PowerCut, RecordingSeam, _drop, _io_error

Layout = dict[str, dict[str, tuple[ChunkRef, ...]]]
Logical = dict[str, dict[str, Any]]

SEGMENT_BYTES = 2 << 10  # tiny segments: the rewrite rolls over to new files as it goes
WORDS = np.array(["north", "east", "south-west", "up", "down-under", "x"])


# -- what a store holds ---------------------------------------------------------------------------


def _logical(store: colvault.Store) -> Logical:
    """Every node with its kind, attributes, pickled objects, row count and values."""
    out: Logical = {}
    with store.snapshot():
        for node in store.walk():
            entry: dict[str, Any] = {
                "kind": type(node).__name__,
                "attrs": dict(node.attrs),
                "objects": dict(node.objects),
            }
            if isinstance(node, colvault.Table):
                entry["rows"] = len(node)
                for name in node.colnames:
                    entry[f"column {name}"] = node.col(name)
            elif isinstance(node, colvault.Array):
                entry["rows"] = len(node)
                entry["cells"] = node[:]
            out[node.path] = entry
    return out


def _differing_rows(got: np.ndarray, want: np.ndarray) -> np.ndarray:
    """Rows that differ; bit for bit for numbers (so NaN equals the same NaN, -0.0 is not 0.0)."""
    if want.dtype.kind in "USO":
        return np.flatnonzero(got != want)
    g = np.ascontiguousarray(got).reshape(len(got), -1).view(np.uint8)
    w = np.ascontiguousarray(want).reshape(len(want), -1).view(np.uint8)
    return np.flatnonzero((g != w).any(axis=1))


def _assert_same(got: Logical, want: Logical, where: str) -> None:
    assert sorted(got) == sorted(want), f"{where}: nodes {sorted(got)}, want {sorted(want)}"
    for path, w in want.items():
        g = got[path]
        assert sorted(g) == sorted(w), f"{where}: {path} has {sorted(g)}, want {sorted(w)}"
        for key, wv in w.items():
            gv = g[key]
            if not isinstance(wv, np.ndarray):
                assert gv == wv, f"{where}: {path} {key} = {gv!r}, want {wv!r}"
                continue
            assert isinstance(gv, np.ndarray), f"{where}: {path} {key} is a {type(gv)}"
            assert (gv.dtype, gv.shape) == (wv.dtype, wv.shape), (
                f"{where}: {path} {key} is {gv.dtype}{gv.shape}, want {wv.dtype}{wv.shape}"
            )
            bad = _differing_rows(gv, wv)
            assert not len(bad), (
                f"{where}: {path} {key}: {len(bad)} rows differ, the first is row {bad[0]}: "
                f"{gv[bad[0]]!r} != {wv[bad[0]]!r}"
            )


def _layout(store: colvault.Store) -> Layout:
    """The committed manifest: for each data node and column, where each chunk lives."""
    out: Layout = {}
    with store.snapshot():
        for node in store.walk():
            if isinstance(node, DataNode):
                state = node._state()
                out[node.path] = {
                    spec.name: state.columns[spec.id] for spec in node._schema.columns
                }
    return out


def _chunk_rows(layout: Layout) -> dict[str, dict[str, tuple[int, ...]]]:
    """Only the chunk sizes of a layout (segment names depend on the files already present)."""
    return {
        path: {col: tuple(r.nrows for r in refs) for col, refs in cols.items()}
        for path, cols in layout.items()
    }


def _files(root: str, node: str) -> dict[str, str]:
    """The segment files holding a node's chunks, with a hash of their bytes."""
    with colvault.open(root) as store:
        t = store[node]
        names = {r.segment for refs in t._state().columns.values() for r in refs}
    out = {}
    for rel in names:
        with open(os.path.join(root, rel), "rb") as f:
            out[rel] = hashlib.blake2b(f.read()).hexdigest()
    return out


def _fds_into(path: str) -> dict[int, str]:
    """This process's file descriptors on files under ``path``."""
    root = os.path.realpath(path) + os.sep
    out = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue
        if target.startswith(root):
            out[int(name)] = target
    return out


def _bury(path: str) -> None:
    """The process died, so the kernel closes its descriptors. Segment files left open by an
    interrupted ``compact()`` would otherwise keep their ``flock``s, and this process's next
    open of the store could not recover them."""
    for fd, target in _fds_into(path).items():
        if ".seg" in target:
            os.close(fd)


class Expected:
    """A template store as it is before any compaction, and as a completed one leaves it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with colvault.open(path) as store:
            self.logical = _logical(store)
            self.layout = _layout(store)
            self.report = store.verify()
            self.ids = {n.path: n._id for n in store.walk() if isinstance(n, DataNode)}
        assert self.report.ok, f"the template is damaged:\n{self.report}"
        self.after: Layout | None = None  # set by the first complete compaction
        self.clean_files: dict[str, str] = {}  # the files of a table compaction must not touch

    def fresh(self, tmp_path: Path, name: str) -> str:
        path = tmp_path / name
        shutil.copytree(self.path, path)
        return str(path)


# -- the power-cut store --------------------------------------------------------------------------


def _rows(columns: str, start: int, stop: int) -> dict[str, np.ndarray]:
    """Rows of the power-cut store: ``i`` a sorted int, ``f`` 3-decimal floats with NaNs
    (decimal encoding), ``h`` incompressible ints, ``c`` text (per-chunk dictionaries)."""
    i = np.arange(start, stop, dtype=np.int64)
    f = np.round(np.sin(i * 0.1) * 1000.0, 3)
    f[i % 37 == 5] = np.nan
    every = {
        "i": i,
        "f": f,
        "h": ((i * 2654435761) & 0xFFFFFFFF).astype(np.uint32),
        "c": WORDS[(i * 7 + i // 50) % len(WORDS)],
    }
    return {c: every[c] for c in columns}


DTYPES = {"i": "i8", "f": "f8", "h": "u4", "c": "category"}


def _table(store: colvault.Store, path: str, columns: str) -> colvault.Table:
    return store.create_table(path, {c: DTYPES[c] for c in columns}, chunk_rows=100)


def _cells(start: int, stop: int) -> np.ndarray:
    i = np.arange(start, stop, dtype=np.float32)
    return np.stack([i, i * 0.5, -i], axis=1)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Expected:
    """A store whose compaction has every kind of work, and a clean table it must not touch:

    - ``/logged``: small commits followed by bulk appends left short chunks inside it; small
      commits grew its short last chunk in place; then another writer rewrote that chunk
      together with new rows, so retired bytes sit in its segments.
    - ``/tailed``: full chunks only, but a crashed writer's garbage after the last chunk of a
      sealed segment (recovery only cuts unsealed ones, so it stays until ``compact()``).
    - ``/arr``: an array with a short chunk inside.
    - ``/gone`` and ``/old/x``: removed, their segments are garbage.
    - ``/clean``: full chunks and a short last one, nothing to reclaim, in segments of its
      own (written by a session of its own): left alone.
    """
    path = tmp_path_factory.mktemp("compact-powercut") / "c.colvault"
    with colvault.open(path, "w", segment_bytes=SEGMENT_BYTES) as store:
        _table(store, "/clean", "if").append(_rows("if", 0, 550))
    with colvault.open(path, "a", segment_bytes=SEGMENT_BYTES) as store:
        logged = _table(store, "/logged", "ifc")
        _table(store, "/tailed", "ih").append(_rows("ih", 0, 400))
        _table(store, "/gone", "ifhc").append(_rows("ifhc", 0, 900))
        _table(store, "/old/x", "h").append(_rows("h", 0, 400))
        arr = store.create_array("/arr", "f4", inner_shape=(3,), chunk_rows=50)
        store.attrs["title"] = "compaction under fire"
        store.objects["config"] = {"gain": 1.5, "channels": [1, 2, 3]}
        logged.attrs["unit"] = "mV"
        arr.attrs["cell"] = ["x", "y", "z"]
        store.commit()
        n = 0
        for _ in range(2):  # a bulk append after each small commit leaves short chunks inside
            for m in (30, 250):
                logged.append(_rows("ifc", n, n + m))
                n += m
                store.commit()
        for _ in range(3):  # small commits grow the short last chunk in place
            logged.append(_rows("ifc", n, n + 10))
            n += 10
            store.commit()
        for m in (20, 120):
            arr.append(_cells(len(arr), len(arr) + m))
            store.commit()
    with colvault.open(path, "a", segment_bytes=SEGMENT_BYTES) as store:
        store["/logged"].append(_rows("ifc", n, n + 40))  # another writer: merge and retire
        store.commit()
        store.remove("/gone")
        store.remove("/old", recursive=True)
        store["/logged"].attrs["rows"] = n + 40
        store.commit()
        tailed = store["/tailed"]
        seg = tailed._state().columns[tailed._schema.columns[1].id][-1].segment
    with open(os.path.join(path, seg), "ab") as f:
        f.write(b"bytes a writer appended before it crashed" * 5)
    expected = Expected(path)
    assert any("tail" in i for i in expected.report.info), expected.report
    sizes = _chunk_rows(expected.layout)
    assert any(n < 100 for n in sizes["/logged"]["i"][:-1]), sizes["/logged"]
    assert any(n < 50 for n in sizes["/arr"]["data"][:-1]), sizes["/arr"]
    expected.clean_files = _files(str(path), "/clean")
    return expected


def _check(
    path: str, template: Expected, layouts: list[Layout], where: str, compacted: bool = False
) -> None:
    """Reopened (with recovery, then read-only): the same values, no damage, the manifest
    exactly one of ``layouts``, and with ``compacted`` nothing left to reclaim."""
    for mode in ("a", "r"):
        with colvault.open(path, mode) as store:
            report = store.verify()
            assert report.ok, f"{where} (mode {mode}): verify() found damage:\n{report}"
            assert not compacted or report.info == [], f"{where} (mode {mode}):\n{report}"
            if mode == "a":
                _assert_same(_logical(store), template.logical, f"{where} (mode {mode})")
            layout = _layout(store)
        if layout not in layouts:
            raise AssertionError(
                f"{where} (mode {mode}): the manifest is neither the one before compact() nor "
                f"the one after it; chunk sizes {_chunk_rows(layout)}, before "
                f"{_chunk_rows(template.layout)}"
            )


def _assert_compacted(store: colvault.Store, template: Expected, where: str) -> None:
    """Nothing left to reclaim, full chunks only (but the last), the same values, and the clean
    table's files untouched."""
    report = store.verify()
    assert report.ok and report.info == [], f"{where}: verify() after compact():\n{report}"
    _assert_same(_logical(store), template.logical, where)
    assert template.after is not None
    got = _chunk_rows(_layout(store))
    assert got == _chunk_rows(template.after), f"{where}: chunk sizes after compact(): {got}"
    assert _files(store.path, "/clean") == template.clean_files, (
        f"{where}: compact() touched the files of /clean, which had nothing to reclaim"
    )


def _compact_again(path: str, template: Expected, where: str) -> None:
    """The next ``compact()`` succeeds, reclaims everything and changes no value."""
    where += ", then compact() again"
    with colvault.open(path, "a", segment_bytes=SEGMENT_BYTES) as store:
        report = store.compact()
        assert "/clean" not in report.rewritten, f"{where}: {report}"
        _assert_compacted(store, template, where)


def _dry_run(template: Expected, tmp_path: Path) -> list[str]:
    """The seam calls of a ``compact()`` that completes (sets ``template.after``)."""
    path = template.fresh(tmp_path, "dry")
    rec = RecordingSeam()
    store = colvault.open(path, "a", segment_bytes=SEGMENT_BYTES)
    try:
        with seam_mod.installed(rec), rec.counted():
            report = store.compact()
        assert sorted(report.rewritten) == ["/arr", "/logged", "/tailed"], report
        assert report.files_removed > 0 and report.bytes_after < report.bytes_before, report
        after = _layout(store)
        if template.after is None:
            template.after = after
        assert after == template.after, "two compactions of one store laid it out differently"
        _assert_compacted(store, template, "compact() completed")
    finally:
        _drop(store)
    rec.lose_power()
    _check(path, template, [after], "compact() completed, then power lost")
    root = os.path.realpath(path)
    ops = [op.replace(root, "") for op in rec.ops]
    assert rec.committed and ops[-1].startswith("commit"), ops
    assert any(op.startswith("create_file") for op in ops[1:-1]), ops
    return ops


# -- power cut and I/O error at every step --------------------------------------------------------


def test_power_cut_at_every_compact_step(template: Expected, tmp_path: Path) -> None:
    ops = _dry_run(template, tmp_path)
    print(f"compact(): {len(ops)} seam calls:\n  " + "\n  ".join(ops))
    assert template.after is not None
    failures = []
    for k in range(len(ops) + 1):  # k: steps completed when the power goes
        at = ops[k] if k < len(ops) else "(after the last step)"
        where = f"power cut before step {k} {at}"
        path = template.fresh(tmp_path, f"cut{k}")
        rec = RecordingSeam(cut_at=k)
        store = colvault.open(path, "a", segment_bytes=SEGMENT_BYTES)
        try:
            with seam_mod.installed(rec), rec.counted(), pytest.raises(PowerCut):
                store.compact()
        finally:
            _drop(store)
            _bury(path)
        rec.lose_power()
        assert rec.committed == (k == len(ops)), where
        try:
            _check(path, template, [template.after if rec.committed else template.layout], where)
            _compact_again(path, template, where)
        except (AssertionError, colvault.ColvaultError) as exc:
            failures.append(f"{type(exc).__name__}: {exc}")
    assert not failures, f"{len(failures)} of {len(ops) + 1} cuts failed:\n\n" + "\n\n".join(
        failures
    )


def test_io_error_at_every_compact_step(template: Expected, tmp_path: Path) -> None:
    """EIO at step k: ``compact()`` raises, nothing changed (for this store object and for a
    new one), and the store object stays usable: a second ``compact()`` completes, durably, and
    nothing of the failed one is left behind (files, or descriptors holding deleted files)."""
    ops = _dry_run(template, tmp_path)
    assert template.after is not None
    failures = []
    for k in range(len(ops)):
        where = f"EIO at step {k} {ops[k]}"
        path = template.fresh(tmp_path, f"eio{k}")
        rec = RecordingSeam(fail_at=k)
        store = colvault.open(path, "a", segment_bytes=SEGMENT_BYTES)
        retried: Layout | None = None
        try:
            with seam_mod.installed(rec):
                with rec.counted(), pytest.raises((OSError, colvault.ColvaultError)) as info:
                    store.compact()
                assert _io_error(info.value) is not None, f"{where}: {info.value!r}"
                assert not rec.committed, where
                assert not store.has_pending, where
                assert _layout(store) == template.layout, f"{where}: the manifest changed"
                _check(path, template, [template.layout], f"{where}, reopened")
                rec.fail_at = None
                try:
                    store.compact()
                except Exception as exc:
                    raise AssertionError(f"{where}: the next compact() failed: {exc!r}") from exc
                report = store.verify()
                assert report.ok and report.info == [], f"{where}, compact() again:\n{report}"
                retried = _layout(store)
                assert _chunk_rows(retried) == _chunk_rows(template.after), where
        except (AssertionError, colvault.ColvaultError) as exc:
            failures.append(f"{type(exc).__name__}: {exc}")
        finally:
            _drop(store)
            leaked = _fds_into(path)
            _bury(path)
        if leaked:
            first = min(leaked.values()).replace(os.path.realpath(path), "")
            failures.append(
                f"{where}: the store is closed, but {len(leaked)} descriptors on its segment "
                f"files are still open, e.g. on {first}"
            )
        if retried is None:
            continue
        # ... and that second compact() is durable: it survives a power cut right after it.
        rec.lose_power()
        try:
            where += ", compact() again, then power lost"
            _check(path, template, [retried], where, compacted=True)
        except (AssertionError, colvault.ColvaultError) as exc:
            failures.append(f"{type(exc).__name__}: {exc}")
    assert not failures, f"{len(failures)} failures in {len(ops)} steps:\n\n" + "\n\n".join(
        failures
    )


class _InterruptAfterCommit(seam_mod.Seam):
    """The sqlite COMMIT lands, then a KeyboardInterrupt arrives before the call returns."""

    def commit(self, conn: sqlite3.Connection) -> None:
        super().commit(conn)
        raise KeyboardInterrupt


def test_interrupt_after_the_compact_commit_point(template: Expected, tmp_path: Path) -> None:
    """Ctrl-C right after compaction's COMMIT: the store is compacted (same values, for this
    store object too), only the old files are left, and the next ``compact()`` removes them."""
    _dry_run(template, tmp_path)
    assert template.after is not None
    path = template.fresh(tmp_path, "interrupt")
    store = colvault.open(path, "a", segment_bytes=SEGMENT_BYTES)
    try:
        with seam_mod.installed(_InterruptAfterCommit()), pytest.raises(KeyboardInterrupt):
            store.compact()
        where = "KeyboardInterrupt after the COMMIT of compact()"
        assert store.verify().ok, f"{where}:\n{store.verify()}"
        _assert_same(_logical(store), template.logical, where)
        assert _layout(store) == template.after, f"{where}: {_chunk_rows(_layout(store))}"
        store["/clean"].attrs["touched"] = True  # the store object stays writable
        store.commit()
        del store["/clean"].attrs["touched"]
        store.commit()
        report = store.compact()
        assert report.rewritten == () and report.files_removed > 0, report
        _assert_compacted(store, template, f"{where}, then compact() again")
    finally:
        _drop(store)
        leaked = _fds_into(path)
        _bury(path)
    assert not leaked, (
        f"the store is closed, but {len(leaked)} descriptors on its segment files are still "
        "open: " + ", ".join(sorted(t.replace(os.path.realpath(path), "") for t in leaked.values()))
    )
    _check(path, template, [template.after], "interrupted compact(), compact() again, reopened")


# -- kill -9 ------------------------------------------------------------------------------------

KILLS = int(os.environ.get("COLVAULT_CRASH_KILLS", "10"))
BIG_SEGMENT_BYTES = 32 << 10
BIG_CHUNK = 2000


def _big_rows(start: int, stop: int) -> dict[str, np.ndarray]:
    i = np.arange(start, stop, dtype=np.int64)
    return {
        "t": i * 1000,
        "v": np.round(np.cos(i * 0.01) * 100.0, 2),
        "s": (i % 97).astype(np.int32),
        "h": ((i * 2654435761) & 0xFFFFFFFF).astype(np.uint32),
    }


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Expected:
    """8 MB of rows committed in turns of 300 and 4000 rows, so that a short chunk follows every
    two full ones, a removed table's segments, and a crashed writer's tail: a compaction that
    takes a noticeable fraction of a second."""
    path = tmp_path_factory.mktemp("compact-kill") / "big.colvault"
    old = os.environ.get("COLVAULT_FSYNC")
    os.environ["COLVAULT_FSYNC"] = "0"  # building the template is not what is tested
    try:
        with colvault.open(path, "w", segment_bytes=BIG_SEGMENT_BYTES) as store:
            # in a segment of its own, away from the garbage: compact() leaves it alone
            store.create_table("/keep", {"t": "i8"}).append({"t": np.arange(5000) * 7})
        with colvault.open(path, "a", segment_bytes=BIG_SEGMENT_BYTES) as store:
            log = store.create_table(
                "/log", {"t": "i8", "v": "f8", "s": "i4", "h": "u4"}, chunk_rows=BIG_CHUNK
            )
            store.create_table("/gone", {"h": "u4"}, chunk_rows=10_000).append(
                {"h": _big_rows(0, 300_000)["h"]}
            )
            log.attrs["source"] = "logger"
            n = 0
            for _ in range(80):
                for m in (300, 2 * BIG_CHUNK):
                    log.append(_big_rows(n, n + m))
                    n += m
                    store.commit()
            store.remove("/gone")
            store.commit()
            seg = log._state().columns[log._schema.columns[0].id][-1].segment
    finally:
        if old is None:
            del os.environ["COLVAULT_FSYNC"]
        else:
            os.environ["COLVAULT_FSYNC"] = old
    with open(os.path.join(path, seg), "ab") as f:
        f.write(os.urandom(3000))
    expected = Expected(path)
    assert expected.report.info, expected.report
    return expected


def _check_killed(path: str, big: Expected, where: str) -> tuple[Layout, int]:
    """Before recovery and after it: no damage, the same values, the layout before or after.
    Returns the layout and how many leftovers ``verify()`` listed before recovery."""
    assert big.after is not None
    leftovers = 0
    for mode in ("r", "a"):
        with colvault.open(path, mode) as store:
            report = store.verify()
            assert report.ok, f"{where} (mode {mode}): verify() found damage:\n{report}"
            leftovers = leftovers or len(report.info)
            _assert_same(_logical(store), big.logical, f"{where} (mode {mode})")
            layout = _layout(store)
        if layout != big.layout and _chunk_rows(layout) != _chunk_rows(big.after):
            raise AssertionError(
                f"{where} (mode {mode}): the manifest is neither the one before compact() nor "
                f"one after it; chunk sizes {_chunk_rows(layout)}"
            )
    return layout, leftovers


BEFORE_COMMIT = "inside compact(), before its commit point"
AFTER_COMMIT = "inside compact(), after its commit point"
RETURNED = "after compact() returned"


def test_kill_9_during_compact(big: Expected, tmp_path: Path) -> None:
    """Every kill comes after the child printed that it calls ``compact()``: kill 0 at once,
    the others after a random fraction of the time a complete compaction takes (the shortest
    seen so far), the even ones within its first 40 %, the odd ones from there up to 1.25
    times it (later in it, around its commit point, after it returned). What the child printed
    and what the store holds tell where each kill landed; at least half of the kills must land
    inside a compaction, before its commit point (the even ones do, unless compactions get
    more than twice as fast as the shortest seen)."""
    seed = int(os.environ.get("COLVAULT_CRASH_SEED") or random.SystemRandom().randrange(2**32))
    print(
        f"compact() kill test seed {seed} (COLVAULT_CRASH_SEED={seed} replays it), {KILLS} kills; "
        f"kill k draws its delay from seed '{seed}:k'"
    )
    # A compaction that runs to its end: how long it takes, and the layout it leaves.
    calibrate = big.fresh(tmp_path, "calibrate")
    with Child("_child_compact.py", calibrate, BIG_SEGMENT_BYTES) as child:
        child.expect("compacting")
        done = child.line().split()
        child.finish()
    assert done[0] == "done" and done[2] == "/log", done
    took = float(done[1])
    with colvault.open(calibrate) as store:
        report = store.verify()
        assert report.ok and report.info == [], f"complete compaction:\n{report}"
        _assert_same(_logical(store), big.logical, "complete compaction")
        big.after = _layout(store)
    assert all(n == BIG_CHUNK for n in _chunk_rows(big.after)["/log"]["t"][:-1])
    print(f"a complete compact() takes {took:.3f} s in the child")

    path = big.fresh(tmp_path, "killed")
    landed: list[str] = []
    for kill in range(KILLS):
        if landed and landed[-1] != BEFORE_COMMIT:  # give this child something to compact again
            shutil.rmtree(path)
            path = big.fresh(tmp_path, f"killed{kill}")
        # Seeded per kill: a kill's delay depends neither on the others nor on COLVAULT_CRASH_KILLS.
        rng = random.Random(f"{seed}:{kill}")
        if kill == 0:
            fraction = 0.0
        elif kill % 2 == 0:
            fraction = rng.uniform(0.0, 0.4)  # inside the compaction, well before its commit
        else:
            fraction = rng.uniform(0.4, 1.25)  # later in it, around its commit point, or after
        delay = fraction * took
        with Child("_child_compact.py", path, BIG_SEGMENT_BYTES) as child:
            child.expect("compacting")  # printed just before compact() is called
            time.sleep(delay)
            child.kill()
            done_lines = [line.split() for line in child.rest() if line.startswith("done ")]
        returned = bool(done_lines)  # "done SECONDS ...": compact() returned
        where = f"kill {kill} (seed {seed}:{kill}, delay {fraction:.2f} x {took:.3f} s)"
        layout, leftovers = _check_killed(path, big, where)
        committed = layout != big.layout
        if returned:
            assert committed, f"{where}: compact() returned, but changed nothing"
        landed.append(RETURNED if returned else AFTER_COMMIT if committed else BEFORE_COMMIT)
        print(f"{where}: {landed[-1]}, {leftovers} leftovers")
        took = min([took] + [float(words[1]) for words in done_lines])
    counts = {phase: landed.count(phase) for phase in (BEFORE_COMMIT, AFTER_COMMIT, RETURNED)}
    print(", ".join(f"{n} {phase}" for phase, n in counts.items()))
    need = max(1, KILLS // 2)
    assert counts[BEFORE_COMMIT] >= need, (
        f"only {counts[BEFORE_COMMIT]} of {KILLS} kills landed {BEFORE_COMMIT}, {need} expected "
        f"(did compactions get more than twice as fast as the {took:.3f} s timed?): {counts}"
    )
    # What the last kill left, a compaction completes.
    with colvault.open(path, "a", segment_bytes=BIG_SEGMENT_BYTES) as store:
        store.compact()
        report = store.verify()
        assert report.ok and report.info == [], f"compact() after the kills:\n{report}"
        _assert_same(_logical(store), big.logical, "compact() after the kills")
        assert _chunk_rows(_layout(store)) == _chunk_rows(big.after)
