"""Durability: a power cut or an I/O error at any step of a commit leaves state A or state B.

``kill -9`` keeps the page cache, so it cannot show a missing ``fsync``. Here a recording
:class:`~colvault.engine.seam.Seam` tracks, for every file written through it, the size at its
last ``fsync`` (a file never fsynced has durable size 0) and the ranges written since (a short
chunk grows in room reserved inside the file), and for every directory the entries present at
its last ``fsync_dir``. A commit is cut at step k (every seam call during the commit
counts: creations, writes, fsyncs, directory fsyncs, the sqlite ``COMMIT``); the test then drops
the store without committing and simulates the power loss: files are truncated to their durable
size, ranges written inside it since its last ``fsync`` are overwritten with garbage, and files
and directories whose creation no ``fsync_dir`` of their parent made durable are
deleted. sqlite's own files are trusted (WAL with ``synchronous=FULL``): a cut before the seam's
commit step means the transaction never committed. The reopened store must hold exactly state A
(the state before the commit: cut before its commit step completed) or state B (after), pass
``verify()``, and read back value by value.

Injected ``EIO`` at each step must give a ``CommitError`` and leave state A; the store object
must stay usable, and its next commit must be as durable as any (it survives a power cut).
"""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import colvault
from colvault.engine import seam as seam_mod

from . import _rows

SEGMENT_BYTES = 16 << 10  # small segments: rollovers during append and during commit
CHUNK_NEW = 500


class PowerCut(BaseException):
    """The machine lost power: the process is as good as gone and no further I/O happens.

    A ``BaseException`` so that no ``except Exception`` in the engine can swallow it.
    """


class RecordingSeam(seam_mod.Seam):
    """Real I/O that also records what is durable, and cuts power or fails at a chosen step."""

    def __init__(self, cut_at: int | None = None, fail_at: int | None = None) -> None:
        self.cut_at = cut_at
        self.fail_at = fail_at
        self.counting = False
        self.ops: list[str] = []  # the seam calls of the counted commit, in order
        self.committed = False  # the counted commit's sqlite COMMIT completed
        self.dead = False
        self.durable: dict[str, int] = {}  # file -> size at its last fsync
        self.unsynced: dict[str, list[tuple[int, int]]] = {}  # file -> ranges written since
        self.created: list[tuple[str, str]] = []  # ("file" | "dir", path), in order
        self.entries: dict[str, set[str]] = {}  # dir -> entries at its last fsync_dir

    # -- counting and breaking -------------------------------------------------------------------

    @contextmanager
    def counted(self) -> Iterator[None]:
        """Count (and break at) the seam calls of one commit."""
        self.counting, self.ops, self.committed = True, [], False
        try:
            yield
        finally:
            self.counting = False

    def _cut(self, why: str) -> None:
        self.dead = True
        raise PowerCut(f"power cut {why}")

    def _before(self, op: str, path: str) -> None:
        if self.dead:
            raise PowerCut(f"no power for {op} {path}")
        if not self.counting:
            return
        k = len(self.ops)  # every call is a step, whether it succeeds or not
        if k == self.cut_at:
            self._cut(f"before step {k} ({op})")
        self.ops.append(f"{op} {path}")
        if k == self.fail_at:
            raise OSError(errno.EIO, f"injected I/O error at commit step {k} ({op})", path)

    def _after(self) -> None:
        if self.counting and len(self.ops) == self.cut_at:
            self._cut(f"after step {len(self.ops) - 1} ({self.ops[-1]})")

    def _touch(self, path: str) -> None:
        # A file this session did not create was made durable by an earlier, completed session.
        if path not in self.durable:
            self.durable[path] = os.path.getsize(path)

    # -- the seam --------------------------------------------------------------------------------

    def create_file(self, path: str) -> int:
        self._before("create_file", path)
        fd = super().create_file(path)
        self.created.append(("file", path))
        self.durable[path] = 0
        self._after()
        return fd

    def mkdir(self, path: str) -> None:
        self._before("mkdir", path)
        super().mkdir(path)
        self.created.append(("dir", path))
        self._after()

    def write(self, fd: int, data: bytes | memoryview, offset: int, path: str) -> None:
        self._before("write", path)
        self._touch(path)
        super().write(fd, data, offset, path)
        self.unsynced.setdefault(path, []).append((offset, len(memoryview(data).cast("B"))))
        self._after()

    def truncate(self, fd: int, size: int, path: str) -> None:
        self._before("truncate", path)
        self._touch(path)
        super().truncate(fd, size, path)
        self._after()

    def fsync(self, fd: int, path: str) -> None:
        self._before("fsync", path)
        super().fsync(fd, path)
        self.durable[path] = os.fstat(fd).st_size
        self.unsynced.pop(path, None)
        self._after()

    def fsync_dir(self, path: str) -> None:
        self._before("fsync_dir", path)
        super().fsync_dir(path)
        self.entries[path] = set(os.listdir(path))
        self._after()

    def commit(self, conn: sqlite3.Connection) -> None:
        self._before("commit", "catalog.sqlite")
        super().commit(conn)
        if self.counting:
            self.committed = True
        self._after()

    # -- the power cut ---------------------------------------------------------------------------

    def lose_power(self) -> None:
        """Throw away everything that was not made durable."""
        for path, size in self.durable.items():
            if os.path.exists(path) and os.path.getsize(path) > size:
                os.truncate(path, size)
            for offset, length in self.unsynced.get(path, ()) if os.path.exists(path) else ():
                if offset < size:  # an overwrite inside the durable size: its pages are lost
                    with open(path, "r+b") as f:
                        f.seek(offset)
                        f.write(b"\xee" * (min(offset + length, size) - offset))
        for kind, path in sorted(self.created, key=lambda c: c[1].count(os.sep)):
            if not os.path.lexists(path):
                continue  # went with its parent
            if os.path.basename(path) not in self.entries.get(os.path.dirname(path), set()):
                if kind == "dir":
                    shutil.rmtree(path)
                else:
                    os.unlink(path)


# -- the states before and after the commit under test ------------------------------------------


@dataclass(frozen=True)
class State:
    rows: dict[str, int]  # table path -> committed rows (values: ``_values(path)(0, rows)``)
    tag: str  # the root attribute "state"


A = State({"/t": 2500, "/u": 700}, "A")

#: Commits each scenario makes on top of state A in one session (rows per table; a path not
#: yet present is a new table, in new groups). The last commit is the one under test.
SCENARIOS: dict[str, list[dict[str, int]]] = {
    "full-chunks": [{"/t": 3500, "/u": 1500}],
    "new-table": [{"/t": 800, "/g/h/new": 1800}],
    "tail-only": [{"/u": 300}],
    "second-commit": [{"/t": 1700, "/g/h/new": 600}, {"/t": 2200, "/u": 900, "/g/h/new": 700}],
    # the last commit grows /g/log's short chunk inside the room its move reserved
    "grow-in-place": [{"/g/log": 50}, {"/g/log": 50}, {"/g/log": 50, "/t": 40}],
    "many-nodes": [{**{f"/m/g{i // 8}/n{i}": 20 + 7 * i for i in range(24)}, "/t": 100}],
    "wide": [{"/wide": 900, "/u": 50}],
}


def _values(path: str) -> Callable[[int, int], dict[str, np.ndarray]]:
    if path == "/wide":
        return _rows.values_wide
    return _rows.values_a if path == "/t" else _rows.values_b


def _state(scenario: str, commits: int) -> State:
    """The state after the first ``commits`` commits of a scenario."""
    rows = dict(A.rows)
    for step in SCENARIOS[scenario][:commits]:
        for path, m in step.items():
            rows[path] = rows.get(path, 0) + m
    return State(rows, f"B{commits}" if commits else "A")


def _before(scenario: str) -> State:
    return _state(scenario, len(SCENARIOS[scenario]) - 1)


def _after(scenario: str) -> State:
    return _state(scenario, len(SCENARIOS[scenario]))


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """State A: two committed tables, closed cleanly."""
    path = tmp_path_factory.mktemp("powercut") / "a.colvault"
    with colvault.open(path, "w", segment_bytes=SEGMENT_BYTES) as store:
        t = store.create_table("/t", _rows.SCHEMA_A, chunk_rows=_rows.CHUNK_A)
        u = store.create_table("/u", _rows.SCHEMA_B, chunk_rows=_rows.CHUNK_B)
        t.append(_rows.values_a(0, A.rows["/t"]))
        u.append(_rows.values_b(0, A.rows["/u"]))
        store.attrs["state"] = A.tag
    return path


def _fresh(template: Path, tmp_path: Path, name: str) -> str:
    path = tmp_path / name
    shutil.copytree(template, path)
    return str(path)


def _stage(store: colvault.Store, scenario: str, done: int) -> None:
    """Stage commit number ``done`` of a scenario (rows, new tables, attributes), uncommitted."""
    now, nxt = _state(scenario, done), _state(scenario, done + 1)
    for path, m in SCENARIOS[scenario][done].items():
        if path in store:
            t = store[path]
        else:
            schema = _rows.SCHEMA_WIDE if path == "/wide" else _rows.SCHEMA_B
            t = store.create_table(path, schema, chunk_rows=CHUNK_NEW)
            t.attrs["made"] = nxt.tag
        n = now.rows.get(path, 0)
        t.append(_values(path)(n, n + m))
    store.attrs["state"] = nxt.tag


def _stage_last(store: colvault.Store, scenario: str) -> None:
    """Make the scenario's earlier commits, then stage the one under test."""
    last = len(SCENARIOS[scenario]) - 1
    for done in range(last):
        _stage(store, scenario, done)
        store.commit()
    _stage(store, scenario, last)


def _check(path: str, state: State, where: str) -> None:
    """The store at ``path`` holds exactly ``state``, value by value, and passes ``verify()``."""
    for mode in ("a", "r"):  # "a" runs recovery first
        with colvault.open(path, mode) as store, store.snapshot():
            report = store.verify()
            assert report.ok, f"{where} (mode {mode}): verify() found damage:\n{report}"
            tables = sorted(n.path for n in store.walk() if isinstance(n, colvault.Table))
            assert tables == sorted(state.rows), f"{where} (mode {mode}): tables {tables}"
            got = store.attrs["state"]
            assert got == state.tag, f"{where} (mode {mode}): state {got!r}, not {state.tag!r}"
            for tpath, n in state.rows.items():
                t = store[tpath]
                assert len(t) == n, f"{where} (mode {mode}): {tpath} has {len(t)} rows, not {n}"
                _rows.check_prefix(tpath, t.read(), _values(tpath)(0, n), f"{where}: ")


def _finish(store: colvault.Store, via: str) -> None:
    """End the transaction: ``commit()``, or ``close()`` (which commits and seals segments)."""
    if via == "close":
        store.close()
    else:
        store.commit()


def _drop(store: colvault.Store) -> None:
    """Let go of the store without committing anything (as a dead process would)."""
    if not store.closed:
        store.session.release()


def _dry_run(template: Path, tmp_path: Path, scenario: str, via: str = "commit") -> list[str]:
    """The seam calls of the scenario's commit, from a run that completes; checks that run."""
    path = _fresh(template, tmp_path, "dry")
    rec = RecordingSeam()
    store = colvault.open(path, "a", segment_bytes=SEGMENT_BYTES)
    with seam_mod.installed(rec):
        _stage_last(store, scenario)
        with rec.counted():
            _finish(store, via)
    _drop(store)
    rec.lose_power()
    _check(path, _after(scenario), f"{scenario}: {via}() completed, then power lost")
    root = os.path.realpath(path)
    ops = [op.replace(root, "") for op in rec.ops]
    assert rec.committed and ops[-1].startswith("commit"), ops
    return ops


# -- the tests ------------------------------------------------------------------------------------


@pytest.mark.parametrize("via", ["commit", "close"])
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_power_cut_at_every_commit_step(
    template: Path, tmp_path: Path, scenario: str, via: str
) -> None:
    ops = _dry_run(template, tmp_path, scenario, via)
    print(f"{scenario} via {via}(): {len(ops)} seam calls:\n  " + "\n  ".join(ops))
    failures = []
    for k in range(len(ops) + 1):  # k: steps completed when the power goes
        path = _fresh(template, tmp_path, f"cut{k}")
        rec = RecordingSeam(cut_at=k)
        store = colvault.open(path, "a", segment_bytes=SEGMENT_BYTES)
        try:
            with seam_mod.installed(rec):
                _stage_last(store, scenario)
                with rec.counted(), pytest.raises(PowerCut):
                    _finish(store, via)
        finally:
            _drop(store)
        rec.lose_power()
        at = ops[k] if k < len(ops) else "(after the last step)"
        where = f"{scenario} via {via}(): power cut before step {k} {at}"
        assert rec.committed == (k == len(ops)), where
        try:
            _check(path, _after(scenario) if rec.committed else _before(scenario), where)
        except (AssertionError, colvault.ColvaultError) as exc:
            failures.append(f"{type(exc).__name__}: {exc}")
    assert not failures, "\n\n".join(failures)


def test_the_grow_in_place_scenario_grows_in_place(template: Path, tmp_path: Path) -> None:
    """The scenario the power-cut test relies on: its last commit writes /g/log's new rows
    inside the file, into room reserved behind the short chunk, which stays where it was."""
    path = _fresh(template, tmp_path, "grow")
    with colvault.open(path, "a", segment_bytes=SEGMENT_BYTES) as store:
        places = []
        for done in range(3):
            _stage(store, "grow-in-place", done)
            store.commit()
            log = store["/g/log"]
            ref = log._state().columns[log._schema.columns[0].id][-1]
            places.append((ref.segment, ref.offset, ref.nrows))
    assert places[1][:2] == places[2][:2] and places[2][2] == 150, places
    assert places[0][:2] != places[1][:2], places  # the second commit moved it into room


def _io_error(exc: BaseException) -> OSError | None:
    """The injected EIO, found in the exception or its causes."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno == errno.EIO:
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_io_error_at_every_commit_step(template: Path, tmp_path: Path, scenario: str) -> None:
    ops = _dry_run(template, tmp_path, scenario)
    before, after = _before(scenario), _after(scenario)
    failures = []
    for k in range(len(ops)):
        where = f"{scenario}: EIO at step {k} {ops[k]}"
        path = _fresh(template, tmp_path, f"eio{k}")
        rec = RecordingSeam(fail_at=k)
        store = colvault.open(path, "a", segment_bytes=SEGMENT_BYTES)
        try:
            with seam_mod.installed(rec):
                _stage_last(store, scenario)
                with rec.counted(), pytest.raises(colvault.CommitError) as info:
                    store.commit()
                assert _io_error(info.value) is not None, f"{where}: {info.value!r}"
                assert not rec.committed, where
                # Nothing of it was applied, in this store object or for another one.
                assert not store.has_pending, where
                for tpath in SCENARIOS[scenario][-1]:
                    if tpath in before.rows:
                        assert len(store[tpath]) == before.rows[tpath], where
                        assert store[tpath].pending_rows == 0, where
                    else:
                        assert tpath not in store, where
                assert store.attrs["state"] == before.tag, where
                _check(path, before, f"{where}, reopened")
                # The store object stays usable: the same changes commit now.
                rec.fail_at = None
                try:
                    _stage(store, scenario, len(SCENARIOS[scenario]) - 1)
                    store.commit()
                except Exception as exc:
                    raise AssertionError(f"{where}: the next commit failed: {exc!r}") from exc
                report = store.verify()
                assert report.ok, f"{where}: verify() after the next commit:\n{report}"
                _check(path, after, f"{where}, next commit, reopened")
        except (AssertionError, colvault.ColvaultError) as exc:
            failures.append(f"{type(exc).__name__}: {exc}")
            _drop(store)
            continue
        # ... and that next commit is durable: it survives a power cut right after it.
        _drop(store)
        rec.lose_power()
        try:
            _check(path, after, f"{where}, next commit, then power lost")
        except (AssertionError, colvault.ColvaultError) as exc:
            failures.append(f"{type(exc).__name__}: {exc}")
    assert not failures, f"{len(failures)} of {len(ops)} steps failed:\n\n" + "\n\n".join(failures)


def test_commit_after_abort_survives_power_cut(template: Path, tmp_path: Path) -> None:
    """Segments created for rows that were then aborted are reused by the next commit: their
    directory entries must still be made durable by it."""
    path = _fresh(template, tmp_path, "abort")
    rec = RecordingSeam()
    store = colvault.open(path, "a", segment_bytes=SEGMENT_BYTES)
    with seam_mod.installed(rec):
        _stage(store, "full-chunks", 0)
        store.abort()
        assert len(store["/t"]) == A.rows["/t"]
        _stage(store, "full-chunks", 0)
        store.commit()
    _drop(store)
    rec.lose_power()
    _check(path, _after("full-chunks"), "abort, commit, then power lost")


def test_abort_of_a_new_table_leaves_the_store_usable(template: Path, tmp_path: Path) -> None:
    """Rows appended to a table created in an aborted transaction must not break later commits
    (nor ``close()``, which commits)."""
    path = _fresh(template, tmp_path, "abort-new")
    with colvault.open(path, "a", segment_bytes=SEGMENT_BYTES) as store:
        _stage(store, "new-table", 0)
        store.abort()
        assert "/g/h/new" not in store
        _stage(store, "new-table", 0)
        store.commit()
    _check(path, _after("new-table"), "abort of a new table, then the same again")


class _InterruptAfterCommit(seam_mod.Seam):
    """The sqlite COMMIT lands, then a KeyboardInterrupt arrives before the call returns."""

    def commit(self, conn: sqlite3.Connection) -> None:
        super().commit(conn)
        raise KeyboardInterrupt


def test_interrupt_after_commit_point_keeps_the_commit(template: Path, tmp_path: Path) -> None:
    """Once the sqlite COMMIT has landed the commit happened: an exception raised after it
    (Ctrl-C) must not roll back, i.e. truncate, the segment bytes its manifest rows name."""
    path = _fresh(template, tmp_path, "interrupt")
    store = colvault.open(path, "a", segment_bytes=SEGMENT_BYTES)
    try:
        with seam_mod.installed(_InterruptAfterCommit()):
            _stage(store, "full-chunks", 0)
            with pytest.raises(KeyboardInterrupt):
                store.commit()
        report = store.verify()
        assert report.ok, f"verify() in the interrupted store object:\n{report}"
    finally:
        _drop(store)
    _check(path, _after("full-chunks"), "KeyboardInterrupt after the COMMIT")
