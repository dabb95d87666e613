"""A full disk at every step of an append, a commit, a CSV import, ``compact()`` and a store's
creation (issue 12).

Three ways to fill the disk:

- the I/O seam: a :class:`FullDiskSeam` raises ``ENOSPC`` from step k of the operation on
  (every seam call counts: file and directory creation, writes, fsyncs, the catalog's link,
  and the sqlite ``COMMIT``, which it rolls back and fails with ``SQLITE_FULL`` as sqlite
  does), at every call that needs space until the disk is freed: a full disk stays full;
- sqlite filling up inside the transaction: ``PRAGMA max_page_count`` on the store's writing
  connection lets the catalog grow by 0 to 3 pages;
- for real, when running as root (CI does): a small tmpfs with a filler file leaving k bytes
  free, k from 0 up in pages until the operation succeeds, so the failure lands in segment
  writes, then in the catalog's WAL at COMMIT; and the catalog's creation.

After every fault: the operation raised a ``CommitError`` that says the disk is full and chains
the ``OSError`` or sqlite error (or it succeeded, where the disk had room enough); the store
object holds the last committed state and nothing pending; reopened in fresh objects (mode "a",
which runs recovery, then "r") the store holds exactly that state, value by value, and
``verify()`` is clean; once space is freed, the same work succeeds in the same store object and
is there after a reopen.

Creating a store on a full disk raises ``CommitError`` and leaves no store; opening one raises
``DiskError``: both say the disk is full. (They raised the raw ``OSError`` or sqlite error, and
called a healthy catalog damaged, before the fixes of issue 12.)
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

SEGMENT_BYTES = 16 << 10  # small segments: rollovers during appends, commits and compact()
CHUNK_CSV = 500
CHUNK_NEW = 500


# -- the seam that fills the disk --------------------------------------------------------------


def _full_error(path: str) -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)


def _sqlite_full() -> sqlite3.OperationalError:
    exc = sqlite3.OperationalError("database or disk is full")
    exc.sqlite_errorcode = sqlite3.SQLITE_FULL  # type: ignore[attr-defined]
    exc.sqlite_errorname = "SQLITE_FULL"  # type: ignore[attr-defined]
    return exc


class FullDiskSeam(seam_mod.Seam):
    """Real I/O until step ``fail_at`` of the counted operation; from there on the disk is full:
    every call that needs space fails with ``ENOSPC`` (the sqlite ``COMMIT`` with
    ``SQLITE_FULL``, after rolling the transaction back as sqlite does), until ``free()``.
    Shrinking a file (``truncate``) needs no space and works."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.fail_at = fail_at
        self.counting = False
        self.full = False
        self.ops: list[str] = []  # the seam calls of the counted operation, in order

    @contextmanager
    def counted(self) -> Iterator[None]:
        self.counting, self.ops = True, []
        try:
            yield
        finally:
            self.counting = False

    def free(self) -> None:
        self.full, self.fail_at = False, None

    def _needs_space(self, op: str, path: str) -> bool:
        """Count the call; whether it fails for want of space."""
        if self.counting:
            if len(self.ops) == self.fail_at:
                self.full = True
            self.ops.append(f"{op} {path}")
        return self.full

    def create_file(self, path: str) -> int:
        if self._needs_space("create_file", path):
            raise _full_error(path)
        return super().create_file(path)

    def mkdir(self, path: str) -> None:
        if self._needs_space("mkdir", path):
            raise _full_error(path)
        super().mkdir(path)

    def link(self, src: str, dst: str) -> None:
        if self._needs_space("link", dst):
            raise _full_error(dst)
        super().link(src, dst)

    def write(self, fd: int, data: bytes | memoryview, offset: int, path: str) -> None:
        if self._needs_space("write", path):
            raise _full_error(path)
        super().write(fd, data, offset, path)

    def fsync(self, fd: int, path: str) -> None:
        if self._needs_space("fsync", path):
            raise _full_error(path)  # delayed allocation: the space is found missing at fsync
        super().fsync(fd, path)

    def fsync_dir(self, path: str) -> None:
        if self._needs_space("fsync_dir", path):
            raise _full_error(path)
        super().fsync_dir(path)

    def commit(self, conn: sqlite3.Connection) -> None:
        if self._needs_space("commit", "catalog.sqlite"):
            conn.execute("ROLLBACK")  # what sqlite does when the WAL cannot grow at COMMIT
            raise _sqlite_full()
        super().commit(conn)


# -- the data -----------------------------------------------------------------------------------

SCHEMA_CSV = {"i": "i8", "x": "f8", "s": "category"}


def _csv_values(start: int, stop: int) -> dict[str, np.ndarray]:
    i = np.arange(start, stop, dtype=np.int64)
    return {
        "i": i,
        "x": i * 0.25 - 100.0,
        "s": np.array([f"st{j % 5}" for j in range(start, stop)]),
    }


def _write_csv(path: Path, start: int, stop: int) -> Path:
    v = _csv_values(start, stop)
    lines = ["i,x,s"] + [
        f"{i},{float(x)!r},{s}" for i, x, s in zip(v["i"], v["x"], v["s"], strict=True)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


#: Where each table's values come from: ``VALUES[path](start, stop)``.
VALUES: dict[str, Callable[[int, int], dict[str, np.ndarray]]] = {
    "/t": _rows.values_a,
    "/u": _rows.values_b,
    "/csv": _csv_values,
    "/g/new": _rows.values_b,
    "/g/csvnew": _csv_values,
}


@dataclass(frozen=True)
class State:
    rows: dict[str, int]  # table path -> committed rows (values: ``VALUES[path](0, rows)``)
    tag: str  # the root attribute "state"

    def plus(self, tag: str, more: dict[str, int]) -> State:
        """This state with ``more`` rows in some tables, and the tag ``tag``."""
        rows = dict(self.rows)
        for path, m in more.items():
            rows[path] = rows.get(path, 0) + m
        return State(rows, tag)


#: The template: /t holds a short chunk between full ones and /u's segments a retired short chunk
#: (compact() re-cuts both); a removed table left its segments behind (compact() deletes them).
A = State({"/t": 2500, "/u": 760, "/csv": 600}, "A")


def _build_template(path: Path) -> None:
    with colvault.open(path, "w", segment_bytes=SEGMENT_BYTES) as store:
        t = store.create_table("/t", _rows.SCHEMA_A, chunk_rows=_rows.CHUNK_A)
        u = store.create_table("/u", _rows.SCHEMA_B, chunk_rows=_rows.CHUNK_B)
        c = store.create_table("/csv", SCHEMA_CSV, chunk_rows=CHUNK_CSV)
        gone = store.create_table("/gone", _rows.SCHEMA_B, chunk_rows=_rows.CHUNK_B)
        t.append(_rows.values_a(0, 300))
        u.append(_rows.values_b(0, 500))
        gone.append(_rows.values_b(0, 2000))
        store.commit()
        t.append(_rows.values_a(300, 2500))  # full chunks behind the short one of 300 rows
        u.append(_rows.values_b(500, 760))
        c.append(_csv_values(0, 600))
        store.commit()
        store.remove("/gone")
        store.attrs["state"] = A.tag


# -- checks -------------------------------------------------------------------------------------


def _check_object(store: colvault.Store, state: State, where: str) -> None:
    """The open store object holds exactly ``state`` and nothing pending."""
    assert not store.has_pending, f"{where}: pending changes left"
    tables = sorted(n.path for n in store.walk() if isinstance(n, colvault.Table))
    assert tables == sorted(state.rows), f"{where}: tables {tables}"
    got = store.attrs["state"]
    assert got == state.tag, f"{where}: state {got!r}, not {state.tag!r}"
    for tpath, n in state.rows.items():
        t = store[tpath]
        assert len(t) == n, f"{where}: {tpath} has {len(t)} rows, not {n}"
        assert t.pending_rows == 0, f"{where}: {tpath} has pending rows"
        _rows.check_prefix(tpath, t.read(), VALUES[tpath](0, n), f"{where}: ")


def _check(path: str, state: State, where: str) -> None:
    """Reopened in fresh objects, the store holds exactly ``state`` and passes ``verify()``."""
    for mode in ("a", "r"):  # "a" runs recovery first
        at = f"{where}, reopened with mode {mode!r}"
        with colvault.open(path, mode) as store, store.snapshot():
            report = store.verify()
            assert report.ok, f"{at}: verify() found damage:\n{report}"
            _check_object(store, state, at)


SQLITE_IOERR_SHMSIZE = 4874  # sqlite3.h: (SQLITE_IOERR | (19 << 8))


def _full_disk_in(exc: BaseException) -> BaseException | None:
    """The ENOSPC, SQLITE_FULL or SQLITE_IOERR_SHMSIZE (no room for the ``-shm`` file) error
    in ``exc`` or its causes."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, errno.EDQUOT):
            return seen
        code = getattr(seen, "sqlite_errorcode", 0)
        if isinstance(seen, sqlite3.Error) and (
            code & 0xFF == sqlite3.SQLITE_FULL or code == SQLITE_IOERR_SHMSIZE
        ):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _check_error(exc: BaseException, where: str, name: str | None = None) -> None:
    """A full disk is reported as a ``CommitError`` that says so (naming ``name``)."""
    assert isinstance(exc, colvault.ColvaultError), f"{where}: raised {exc!r}, not a ColvaultError"
    assert _full_disk_in(exc) is not None, f"{where}: {exc!r} does not chain the full disk"
    assert isinstance(exc, colvault.CommitError), f"{where}: {exc!r} is not a CommitError"
    assert "the disk is full" in str(exc), f"{where}: {exc} does not say the disk is full"
    if name is not None:
        assert name in str(exc), f"{where}: {exc} does not name {name}"


# -- the operations under test ------------------------------------------------------------------


@dataclass(frozen=True)
class Operation:
    """Work on a store in state A: ``stage`` (not under test), then ``run`` (the part that
    meets the full disk), leading to ``after``; ``names`` is what a failure's message names."""

    stage: Callable[[colvault.Store, Path], None]
    run: Callable[[colvault.Store, Path], object]
    after: State
    names: str | None = None
    finish: Callable[[colvault.Store], None] = lambda store: None  # after ``run``, not under test
    before: State = A  # the last committed state when ``run`` starts
    again: Callable[[colvault.Store, Path], None] | None = None  # ``stage`` after a failure


def _no_stage(store: colvault.Store, data: Path) -> None:
    pass


def _stage_append(store: colvault.Store, data: Path) -> None:
    store["/u"].append(_rows.values_b(A.rows["/u"], A.rows["/u"] + 120))
    store.attrs["state"] = "B"


def _run_append(store: colvault.Store, data: Path) -> None:
    store["/t"].append(_rows.values_a(A.rows["/t"], A.rows["/t"] + 3500))  # full chunks


def _stage_commit(store: colvault.Store, data: Path) -> None:
    store["/t"].append(_rows.values_a(A.rows["/t"], A.rows["/t"] + 3500))
    store["/u"].append(_rows.values_b(A.rows["/u"], A.rows["/u"] + 120))  # with its short chunk
    new = store.create_table("/g/new", _rows.SCHEMA_B, chunk_rows=CHUNK_NEW)
    new.append(_rows.values_b(0, 1800))
    store.attrs["state"] = "B"


def _commit(store: colvault.Store, data: Path) -> None:
    store.commit()


def _stage_logger(store: colvault.Store, data: Path) -> None:
    """A first commit moves the short last chunks into this session's segment, raw, with room
    behind them..."""
    store["/t"].append(_rows.values_a(A.rows["/t"], A.rows["/t"] + 30))
    store["/u"].append(_rows.values_b(A.rows["/u"], A.rows["/u"] + 50))
    store.attrs["state"] = "B1"
    store.commit()
    _again_logger(store, data)


def _again_logger(store: colvault.Store, data: Path) -> None:
    """... in which the next commit grows them in place, behind the committed rows."""
    store["/t"].append(_rows.values_a(A.rows["/t"] + 30, A.rows["/t"] + 60))
    store["/u"].append(_rows.values_b(A.rows["/u"] + 50, A.rows["/u"] + 100))
    store.attrs["state"] = "B2"


def _import_append(store: colvault.Store, data: Path) -> None:
    colvault.import_csv(data / "more.csv", store, "/csv")


def _import_new(store: colvault.Store, data: Path) -> None:
    colvault.import_csv(data / "new.csv", store, "/g/csvnew")


def _compact(store: colvault.Store, data: Path) -> None:
    report = store.compact()
    assert "/t" in report.rewritten and report.files_removed, report


CSV_MORE = 2600
CSV_NEW = 700

OPERATIONS: dict[str, Operation] = {
    # a batch of full chunks, written at once, with other work pending in the transaction
    "append": Operation(
        _stage_append,
        _run_append,
        A.plus("B", {"/t": 3500, "/u": 120}),
        names="/t",
        finish=colvault.Store.commit,
    ),
    # full chunks and a new table's written before; short last chunks, fsyncs, the catalog
    "commit": Operation(
        _stage_commit, _commit, A.plus("B", {"/t": 3500, "/u": 120, "/g/new": 1800})
    ),
    # short last chunks grown in place, in the room the session's first commit reserved
    # behind them: a hole until written, so growing takes new pages of the disk
    "logger": Operation(
        _stage_logger,
        _commit,
        A.plus("B2", {"/t": 60, "/u": 100}),
        before=A.plus("B1", {"/t": 30, "/u": 50}),
        again=_again_logger,
    ),
    "csv-append": Operation(_no_stage, _import_append, A.plus("A", {"/csv": CSV_MORE})),
    "csv-new": Operation(_no_stage, _import_new, A.plus("A", {"/g/csvnew": CSV_NEW})),
    "compact": Operation(_no_stage, _compact, A),
}


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fulldisk")
    _build_template(root / "a.colvault")
    _write_csv(root / "more.csv", A.rows["/csv"], A.rows["/csv"] + CSV_MORE)
    _write_csv(root / "new.csv", 0, CSV_NEW)
    return root


def _fresh(template: Path, tmp_path: Path, name: str) -> str:
    path = tmp_path / name
    shutil.copytree(template / "a.colvault", path)
    return str(path)


class Disk:
    """Makes the disk full for the operation under test (``fill``), and frees it (``free``)."""

    def fill(self, store: colvault.Store | None) -> None:
        raise NotImplementedError

    def free(self, store: colvault.Store | None) -> None:
        raise NotImplementedError


def _trial(data: Path, path: str, op: Operation, disk: Disk, where: str) -> BaseException | None:
    """Run ``op`` on the store at ``path`` against a full disk; check the outcome, free the
    disk and check that work resumes. The error the operation raised (None: it succeeded)."""
    store = colvault.open(path, "a", segment_bytes=SEGMENT_BYTES)
    try:
        op.stage(store, data)
        disk.fill(store)
        phase = "run"
        try:
            op.run(store, data)
            phase = "finish"
            op.finish(store)
        except Exception as exc:
            error: BaseException | None = exc
        else:
            error = None
        finally:
            disk.free(store)
        if error is not None:
            _check_error(error, where, op.names if phase == "run" else None)
        state = op.before if error is not None else op.after
        _check_object(store, state, f"{where}: the store object")
        _check(path, state, where)
        if error is not None:  # work resumes, in the same store object
            again = f"{where}, then again with space"
            try:
                (op.again or op.stage)(store, data)
                op.run(store, data)
                op.finish(store)
            except Exception as exc:
                raise AssertionError(f"{again}: failed: {exc!r}") from exc
            _check_object(store, op.after, f"{again}: the store object")
            report = store.verify()
            assert report.ok, f"{again}: verify() in the store object:\n{report}"
            _check(path, op.after, again)
    finally:
        store.close()
    return error


def _sweep(
    trials: Iterator[tuple[str, Disk]],
    template: Path,
    where: Path,
    op: Operation,
    remove: bool = False,
) -> tuple[list[BaseException | None], list[str]]:
    """Run one trial per (name, disk), each on a fresh copy of the template in ``where``
    (removed afterwards if ``remove``: a tmpfs has room for few); their errors, and the
    failures of their checks."""
    errors: list[BaseException | None] = []
    failures = []
    for i, (name, disk) in enumerate(trials):
        path = _fresh(template, where, f"trial{i}")
        try:
            errors.append(_trial(template, path, op, disk, name))
        except (AssertionError, colvault.ColvaultError) as exc:
            failures.append(f"{type(exc).__name__}: {exc}")
            errors.append(exc)
        finally:
            if remove:
                shutil.rmtree(path, ignore_errors=True)
    return errors, failures


# -- the seam variant: ENOSPC from step k on --------------------------------------------------


class SeamDisk(Disk):
    def __init__(self, seam: FullDiskSeam, k: int) -> None:
        self.seam, self.k = seam, k

    def fill(self, store: colvault.Store | None) -> None:
        self.seam.fail_at, self.seam.counting, self.seam.ops = self.k, True, []

    def free(self, store: colvault.Store | None) -> None:
        self.seam.counting = False
        self.seam.free()


def _dry_run(template: Path, tmp_path: Path, op: Operation) -> list[str]:
    """The seam calls of the operation, from a run with space; checks that run."""
    path = _fresh(template, tmp_path, "dry")
    rec = FullDiskSeam()
    with seam_mod.installed(rec), colvault.open(path, "a", segment_bytes=SEGMENT_BYTES) as store:
        op.stage(store, template)
        with rec.counted():
            op.run(store, template)
        op.finish(store)
    _check(path, op.after, "dry run")
    root = os.path.realpath(path)
    return [o.replace(root, "") for o in rec.ops]


@pytest.mark.parametrize("name", sorted(OPERATIONS))
def test_enospc_from_every_step(template: Path, tmp_path: Path, name: str) -> None:
    op = OPERATIONS[name]
    ops = _dry_run(template, tmp_path, op)
    print(f"{name}: {len(ops)} seam calls:\n  " + "\n  ".join(ops))
    rec = FullDiskSeam()
    trials = (
        (f"{name}: disk full from step {k} {ops[k]}", SeamDisk(rec, k)) for k in range(len(ops))
    )
    with seam_mod.installed(rec):
        errors, failures = _sweep(trials, template, tmp_path, op)
    assert not failures, f"{len(failures)} of {len(ops)} steps:\n\n" + "\n\n".join(failures)
    succeeded = [ops[k] for k, e in enumerate(errors) if e is None]
    assert not succeeded, f"{name} succeeded with the disk full from {succeeded}"


# -- sqlite fills up inside the transaction -------------------------------------------------


class PageLimit(Disk):
    """The catalog may grow by only ``pages`` pages (``PRAGMA max_page_count`` on the store's
    writing connection): sqlite fails the statement that needs more with ``SQLITE_FULL``."""

    def __init__(self, pages: int) -> None:
        self.pages = pages
        self.old = 0

    def _writer(self, store: colvault.Store | None) -> sqlite3.Connection:
        assert store is not None
        conn = store.session.catalog.writer
        assert conn is not None
        return conn

    def fill(self, store: colvault.Store | None) -> None:
        conn = self._writer(store)
        self.old = conn.execute("PRAGMA max_page_count").fetchone()[0]
        size = conn.execute("PRAGMA page_count").fetchone()[0]
        got = conn.execute(f"PRAGMA max_page_count = {size + self.pages}").fetchone()[0]
        assert got == size + self.pages, (got, size)

    def free(self, store: colvault.Store | None) -> None:
        self._writer(store).execute(f"PRAGMA max_page_count = {self.old}")


PAGE_LIMITS = range(4)


@pytest.mark.parametrize("name", sorted(OPERATIONS))
def test_catalog_full_inside_the_transaction(template: Path, tmp_path: Path, name: str) -> None:
    op = OPERATIONS[name]
    trials = ((f"{name}: the catalog may grow by {j} pages", PageLimit(j)) for j in PAGE_LIMITS)
    errors, failures = _sweep(trials, template, tmp_path, op)
    assert not failures, "\n\n".join(failures)
    failed = [j for j, e in zip(PAGE_LIMITS, errors, strict=True) if e is not None]
    print(f"{name}: failed when the catalog could grow by {failed} pages")


# -- a real full disk: a small tmpfs ---------------------------------------------------------

PAGE = 4096
#: Free space beyond which every operation here succeeds (each needs well under this).
ENOUGH = 512 << 10


def _free_bytes(mount: Path) -> int:
    st = os.statvfs(mount)
    return st.f_bavail * st.f_frsize


class Filler(Disk):
    """A file that takes all the free space of the tmpfs but ``left`` bytes."""

    def __init__(self, mount: Path, left: int) -> None:
        self.path = mount / "filler"
        self.mount, self.left = mount, left

    def fill(self, store: colvault.Store | None) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            size = _free_bytes(self.mount) - self.left
            if size > 0:
                os.posix_fallocate(fd, 0, size)
        finally:
            os.close(fd)
        assert _free_bytes(self.mount) == self.left, (_free_bytes(self.mount), self.left)

    def free(self, store: colvault.Store | None) -> None:
        os.unlink(self.path)


def _kind(exc: BaseException) -> str:
    """Where the disk ran out: a segment (ENOSPC from a write) or the catalog (sqlite)."""
    full = _full_disk_in(exc)
    return "catalog" if isinstance(full, sqlite3.Error) else "segments"


@pytest.mark.parametrize("name", sorted(OPERATIONS))
def test_a_real_full_disk(template: Path, tmpfs: Path, name: str) -> None:
    """Free space from none up in steps of a page, until the operation succeeds."""
    op = OPERATIONS[name]
    failures: list[str] = []
    kinds: dict[str, list[int]] = {}
    for left in range(0, ENOUGH, PAGE):
        where = f"{name}: {left} bytes free"
        trial = iter([(where, Filler(tmpfs, left))])
        errors, failed = _sweep(trial, template, tmpfs, op, remove=True)
        failures += failed
        if failed:
            continue
        if errors[0] is None:
            break
        kinds.setdefault(_kind(errors[0]), []).append(left)
    else:
        failures.append(f"{name}: failed even with {ENOUGH} bytes free")
    assert not failures, f"{len(failures)} trials:\n\n" + "\n\n".join(failures)
    print(f"{name}: succeeded with {left} bytes free; the disk ran out in {kinds}")
    # The range made the failure land in the segments and in the catalog (its pages and WAL).
    assert sorted(kinds) == ["catalog", "segments"], kinds


# -- the catalog's creation, and opening on a full disk ---------------------------------------

CREATED = State({"/t": 1500}, "C")


def _create_trial(path: Path, disk: Disk, where: str) -> BaseException | None:
    """Create a store at ``path`` on a full disk; then, with space, it is absent or whole and
    a store can be created there and used. The error the creation raised."""
    disk.fill(None)
    try:
        colvault.open(path, "a").close()
    except Exception as exc:
        error: BaseException | None = exc
    else:
        error = None
    finally:
        disk.free(None)
    stray = sorted(n for n in os.listdir(path) if n.startswith(".")) if path.exists() else []
    assert not stray, f"{where}: the creation left {stray} behind"
    with colvault.open(path, "a", segment_bytes=SEGMENT_BYTES) as store:
        report = store.verify()
        assert report.ok, f"{where}, then with space: verify():\n{report}"
        assert list(store.paths()) == ["/"], f"{where}, then with space: {list(store.paths())}"
        t = store.create_table("/t", _rows.SCHEMA_A, chunk_rows=_rows.CHUNK_A)
        t.append(_rows.values_a(0, CREATED.rows["/t"]))
        store.attrs["state"] = CREATED.tag
    _check(str(path), CREATED, f"{where}, then created with space")
    return error


def _creation_errors(errors: list[tuple[str, BaseException | None]]) -> None:
    """A creation that meets a full disk raises a ColvaultError that says so (the raw
    ``OSError`` or sqlite error escaped ``Catalog.create`` once)."""
    raw, wrong = [], []
    for where, exc in errors:
        if exc is None:
            continue
        said = isinstance(exc, colvault.ColvaultError) and "the disk is full" in str(exc)
        if said and _full_disk_in(exc) is not None:
            continue
        if isinstance(exc, OSError | sqlite3.Error) and not isinstance(exc, colvault.ColvaultError):
            raw.append(f"{where}: {exc!r}")
        else:
            wrong.append(f"{where}: {exc!r}")
    assert not wrong, "\n".join(wrong)
    assert not raw, "store creation on a full disk raised raw errors:\n" + "\n".join(raw)


def test_store_creation_with_enospc_from_every_step(tmp_path: Path) -> None:
    rec = FullDiskSeam()
    with seam_mod.installed(rec), rec.counted():
        colvault.open(tmp_path / "dry", "a").close()
    ops = [o.replace(str(tmp_path / "dry"), "") for o in rec.ops]
    assert ops, "the catalog's creation makes no seam calls"
    errors = []
    with seam_mod.installed(rec):
        for k, step in enumerate(ops):
            where = f"creation: disk full from step {k} {step}"
            error = _create_trial(tmp_path / f"k{k}", SeamDisk(rec, k), where)
            assert error is not None, f"{where}: succeeded"
            errors.append((where, error))
    _creation_errors(errors)


def test_store_creation_on_a_real_full_disk(tmpfs: Path) -> None:
    errors = []
    for left in range(0, ENOUGH, 2 * PAGE):
        path = tmpfs / f"s{left}"
        where = f"creation: {left} bytes free"
        error = _create_trial(path, Filler(tmpfs, left), where)
        shutil.rmtree(path)
        errors.append((where, error))
        if error is None:
            break
    else:
        raise AssertionError(f"creation failed even with {ENOUGH} bytes free")
    print(f"creation: succeeded with {left} bytes free after {len(errors) - 1} failures")
    assert len(errors) > 1
    _creation_errors(errors)


@pytest.mark.parametrize("mode", ["r", "a"])
def test_opening_on_a_real_full_disk(template: Path, tmpfs: Path, mode: str) -> None:
    """A store closed cleanly (no WAL, no shared-memory file) opened on a full disk: it opens
    at its last commit, or raises a ColvaultError that says the disk is full; never that the
    catalog is damaged (sqlite cannot make the ``-shm`` file, SQLITE_IOERR_SHMSIZE, "disk I/O
    error", and ``Catalog`` once called that damage)."""
    raw = []
    for left in range(0, ENOUGH, 2 * PAGE):
        path = tmpfs / f"s{left}"
        shutil.copytree(template / "a.colvault", path)
        where = f"open mode {mode!r}: {left} bytes free"
        filler = Filler(tmpfs, left)
        filler.fill(None)
        try:
            with colvault.open(path, mode) as store:
                _check_object(store, A, where)
        except colvault.ColvaultError as exc:
            if "the disk is full" not in str(exc) or isinstance(exc, colvault.CatalogError):
                raw.append(f"{where}: {exc!r}")
            error: BaseException | None = exc
        else:
            error = None
        finally:
            filler.free(None)
        _check(str(path), A, f"{where}, then with space")
        shutil.rmtree(path)
        if error is None:
            break
    else:
        raise AssertionError(f"{mode}: opening failed even with {ENOUGH} bytes free")
    assert not raw, "a full disk at open was not said so:\n" + "\n".join(raw)


def test_compact_on_a_full_disk_says_so(template: Path, tmp_path: Path) -> None:
    """``compact()`` told a full disk by the bare errno text ("failed ([Errno 28] No space
    left on device: ...)") where a commit says "the disk is full"."""
    path = _fresh(template, tmp_path, "compact")
    rec = FullDiskSeam(fail_at=0)
    with seam_mod.installed(rec), colvault.open(path, "a") as store:
        with rec.counted(), pytest.raises(colvault.CommitError) as info:
            store.compact()
        rec.free()
        assert "the disk is full" in str(info.value), info.value
        cause = info.value.__cause__
        assert isinstance(cause, OSError) and cause.errno == errno.ENOSPC, repr(cause)
        _check_object(store, A, "compact() on a full disk: the store object")
    _check(path, A, "compact() on a full disk")
