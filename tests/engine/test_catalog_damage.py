"""A damaged ``catalog.sqlite``: every outcome is a clean report or a ``ColvaultError``.

Copies of one small store get bytes of their catalog flipped, or the file cut short, at many
places. Opening each (read-only, then for writing, which runs recovery), verifying it and
reading everything in it must either work or raise a :class:`~colvault.ColvaultError`
(``CatalogError`` where the catalog is to blame); ``verify()`` itself never raises, and no
segment file (the committed data) is changed. Before ``CatalogError``, about half of the
8-byte flips escaped as raw ``sqlite3.DatabaseError``, ``OperationalError`` or
``json.JSONDecodeError``.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

import colvault
from colvault.engine.catalog import FORMAT_VERSION
from colvault.engine.recovery import segment_files

CATALOG = "catalog.sqlite"
FLIP_TRIALS = 60
FLIPPED_BYTES = 8


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("damage") / "t.colvault"
    rng = np.random.default_rng(7)
    with colvault.open(path, "w") as store:
        t = store.create_table(
            "/runs/a", {"t": "M8[ns]", "sensor": "i4", "value": "f8", "station": "category"},
            chunk_rows=1000,
        )  # fmt: skip
        n = 3500
        t.append(
            {
                "t": np.arange(n).astype("M8[s]").astype("M8[ns]"),
                "sensor": rng.integers(0, 50, n),
                "value": np.round(rng.normal(20, 5, n), 2),
                "station": rng.choice(["north", "south", "east"], n),
            }
        )
        t.attrs["instrument"] = "LX-200"
        t.objects["calibration"] = {"offset": 0.25}
        store.create_array("/raw", "f4", inner_shape=(4,), chunk_rows=500).append(
            rng.random((1200, 4), dtype=np.float32)
        )
        store.attrs["owner"] = "lab"
    assert not os.path.exists(path / (CATALOG + "-wal")) or not os.path.getsize(
        path / (CATALOG + "-wal")
    ), "the catalog's WAL should be checkpointed on close"
    return path


def _segments(path: Path) -> dict[str, str]:
    return {
        rel: hashlib.sha256((path / rel).read_bytes()).hexdigest()
        for rel in segment_files(str(path))
    }


def _exercise(path: Path) -> str:
    """Open, verify and read everything; the outcome in a word. Raises what escapes."""
    outcomes = []
    for mode in ("r", "a"):
        try:
            with colvault.open(path, mode) as store:
                report = store.verify()  # must report, never raise
                for node in store.walk():
                    dict(node.attrs)
                    list(node.objects.keys())
                    if isinstance(node, colvault.Table):
                        node.read()
                        node.read_where("value > 20")
                        node.col("station", codes=True)
                    elif isinstance(node, colvault.Array):
                        node[:]
            outcomes.append("ok" if report.ok else "reported")
        except colvault.ColvaultError as exc:
            outcomes.append(type(exc).__name__)
    return "/".join(outcomes)


def _damaged_copy(template: Path, tmp_path: Path, name: str) -> tuple[Path, bytearray]:
    path = tmp_path / name
    shutil.copytree(template, path)
    return path, bytearray((path / CATALOG).read_bytes())


def _check(path: Path, template: Path, where: str, failures: list[str], seen: dict) -> None:
    before = _segments(template)
    try:
        outcome = _exercise(path)
        seen[outcome] = seen.get(outcome, 0) + 1
    except Exception as exc:
        failures.append(f"{where}: {type(exc).__module__}.{type(exc).__name__}: {exc}")
    if _segments(path) != before:
        failures.append(f"{where}: segment files changed")


def test_flipped_bytes(template: Path, tmp_path: Path) -> None:
    seed = int(os.environ.get("COLVAULT_TEST_SEED", random.randrange(2**32)))
    print(f"base seed {seed}")
    rng = random.Random(seed)
    failures: list[str] = []
    seen: dict[str, int] = {}
    size = (template / CATALOG).stat().st_size
    for trial in range(FLIP_TRIALS):
        path, data = _damaged_copy(template, tmp_path, f"flip{trial}")
        where = []
        for _ in range(FLIPPED_BYTES):
            at = rng.randrange(size)
            data[at] ^= rng.randrange(1, 256)
            where.append(at)
        (path / CATALOG).write_bytes(data)
        _check(path, template, f"trial {trial}, bytes {sorted(where)}", failures, seen)
        shutil.rmtree(path)
    print(seen)
    assert not failures, f"{len(failures)} of {FLIP_TRIALS}:\n" + "\n".join(failures)
    assert len(seen) > 1, f"every damage went unnoticed or every one was fatal: {seen}"


def test_damage_at_every_page(template: Path, tmp_path: Path) -> None:
    """One byte flipped in the header region of each page, and in its cells' area."""
    size = (template / CATALOG).stat().st_size
    page = sqlite3.connect(template / CATALOG).execute("PRAGMA page_size").fetchone()[0]
    failures: list[str] = []
    seen: dict[str, int] = {}
    for start in range(0, size, page):
        for at in (start + 1, start + 5, start + page - 40):
            if at >= size:
                continue
            path, data = _damaged_copy(template, tmp_path, f"page{at}")
            data[at] ^= 0xFF
            (path / CATALOG).write_bytes(data)
            _check(path, template, f"byte {at} flipped", failures, seen)
            shutil.rmtree(path)
    print(seen)
    assert not failures, "\n".join(failures)


def test_truncated_catalog(template: Path, tmp_path: Path) -> None:
    size = (template / CATALOG).stat().st_size
    failures: list[str] = []
    seen: dict[str, int] = {}
    for cut in sorted({0, 1, 50, 99, 100, 512, *range(1024, size, max(1, size // 12))}):
        path, data = _damaged_copy(template, tmp_path, f"cut{cut}")
        (path / CATALOG).write_bytes(bytes(data[:cut]))
        _check(path, template, f"cut to {cut} of {size} bytes", failures, seen)
        shutil.rmtree(path)
    print(seen)
    assert not failures, "\n".join(failures)
    assert "ok" not in seen, f"a truncated catalog passed for whole: {seen}"


def test_verify_reports_what_integrity_check_finds(template: Path, tmp_path: Path) -> None:
    """An index page that disagrees with its table: sqlite's integrity_check sees it."""
    path, _ = _damaged_copy(template, tmp_path, "index")
    conn = sqlite3.connect(path / CATALOG)
    conn.execute("PRAGMA writable_schema=ON")  # drop an index's rows behind sqlite's back
    root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'chunks_segment'")
    page = root.fetchone()[0]
    size = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    data = bytearray((path / CATALOG).read_bytes())
    offset = (page - 1) * size
    data[offset + 3 : offset + 5] = b"\x00\x00"  # the index page now holds no cells
    (path / CATALOG).write_bytes(data)
    with colvault.open(path) as store:
        report = store.verify()
    assert not report.ok
    assert any(d.startswith("catalog:") for d in report.damage), str(report)


def test_recovery_cuts_nothing_on_the_word_of_a_damaged_manifest(tmp_path: Path) -> None:
    """A crashed writer's tail behind committed chunks, and a catalog whose last chunk there
    says it is shorter than it is: cutting at its end would cut committed bytes."""
    path = tmp_path / "s.colvault"
    store = colvault.open(path, "w")
    store.create_table("/t", {"x": "f8"}, chunk_rows=100).append({"x": np.arange(250.0)})
    store.commit()
    store.session.release()  # as a crash would: the segments stay unsealed
    (rel,) = segment_files(str(path))
    with open(path / rel, "ab") as f:
        f.write(b"uncommitted tail")
    conn = sqlite3.connect(path / CATALOG)
    conn.execute(
        "UPDATE chunks SET length = length - 8 WHERE segment = ? AND offset = "
        "(SELECT MAX(offset) FROM chunks WHERE segment = ?)",
        (rel, rel),
    )
    conn.commit()
    conn.close()
    before = (path / rel).read_bytes()
    with colvault.open(path, "a") as store:
        assert not store.verify().ok  # the damaged chunk is found ...
    assert (path / rel).read_bytes() == before  # ... and no byte of the segment was cut


def test_recovery_still_cuts_a_crashed_writers_tail(tmp_path: Path) -> None:
    path = tmp_path / "s.colvault"
    store = colvault.open(path, "w")
    store.create_table("/t", {"x": "f8"}, chunk_rows=100).append({"x": np.arange(250.0)})
    store.commit()
    store.session.release()
    (rel,) = segment_files(str(path))
    committed = (path / rel).read_bytes()
    with open(path / rel, "ab") as f:
        f.write(b"uncommitted tail")
    with colvault.open(path, "a") as store:
        assert store.verify().ok
        np.testing.assert_array_equal(store["/t"].cols.x[:], np.arange(250.0))
    assert (path / rel).read_bytes() == committed


@pytest.mark.parametrize(
    "params",
    [
        '{"w": "<u1"}',
        '{"base": "7", "w": "<u1"}',
        '{"base": 7, "w": "<f8"}',
        '{"base": 7, "w": ">u2"}',
        '{"base": 99999999999999999999999, "w": "<u1"}',
        "[1, 2]",
        "{oops",
    ],
)
def test_chunk_params_that_do_not_add_up_are_catalog_damage(tmp_path: Path, params: str) -> None:
    """The params of an encoding sit in the catalog, outside the chunk's crc: a flipped byte
    there is caught when the manifest is loaded, never a KeyError from deep in a decoder."""
    path = tmp_path / "s.colvault"
    with colvault.open(path, "w") as store:
        t = store.create_table("/t", {"x": "i8"}, chunk_rows=1024)
        t.append({"x": np.arange(4096) % 200 + 10**9})  # offsets from the minimum: "for"
    with sqlite3.connect(path / CATALOG) as conn:
        encodings = {r[0] for r in conn.execute("SELECT encoding FROM chunks")}
        assert encodings == {"for"}, encodings
        conn.execute("UPDATE chunks SET params = ? WHERE chunk_index = 1", (params,))
    conn.close()
    with colvault.open(path) as store:
        with pytest.raises(colvault.CatalogError, match="manifest of /t: chunk 1 of column 'x'"):
            store["/t"].read()
        with pytest.raises(colvault.CatalogError):
            store["/t"].count_where("x > 5")


def test_a_chunk_whose_params_claim_another_width_is_not_read_as_values(tmp_path: Path) -> None:
    """Params that pass for valid but do not fit the chunk (a wider packed type): the frame's
    size gives it away; before, the reader returned a scratch buffer's old bytes as values."""
    path = tmp_path / "s.colvault"
    with colvault.open(path, "w") as store:
        t = store.create_table("/t", {"x": "i8"}, chunk_rows=1024)
        t.append({"x": np.arange(4096) % 200 + 10**9})
    with sqlite3.connect(path / CATALOG) as conn:
        conn.execute("""UPDATE chunks SET params = '{"base": 1000000000, "w": "<u8"}'""")
    conn.close()
    with colvault.open(path) as store:
        with pytest.raises(colvault.ChecksumError, match=r"matches \(cannot decode: a frame of"):
            store["/t"].read()
        with pytest.raises(colvault.ColvaultError):  # a scan, not the zone maps' answer
            store["/t"].count_where("x > 1000000100")
        assert not store.verify().ok


def _delta_store(path: Path) -> tuple[int, dict]:
    """A table of one sorted, irregular int64 column: ``delta`` chunks with anchors; the
    first chunk's rows and params."""
    with colvault.open(path, "w") as store:
        t = store.create_table("/t", {"x": "i8"}, chunk_rows=65_536)
        t.append({"x": np.cumsum(np.arange(200_000) % 7)})
    with sqlite3.connect(path / CATALOG) as conn:
        (params,) = conn.execute("SELECT params FROM chunks WHERE chunk_index = 1").fetchone()
    conn.close()
    return 65_536, json.loads(params)


@pytest.mark.parametrize("drop", ["clen", "every"])
def test_delta_anchors_without_their_frame_length_are_catalog_damage(
    tmp_path: Path, drop: str
) -> None:
    path = tmp_path / "s.colvault"
    _, params = _delta_store(path)
    assert params["every"] > 0 and params["clen"] > 0, params
    del params[drop]
    with sqlite3.connect(path / CATALOG) as conn:
        conn.execute("UPDATE chunks SET params = ? WHERE chunk_index = 1", (json.dumps(params),))
    conn.close()
    with colvault.open(path) as store, pytest.raises(colvault.CatalogError, match="chunk 1"):
        store["/t"][70_000]


def test_delta_anchors_that_do_not_fit_the_payload_are_not_read_as_values(
    tmp_path: Path,
) -> None:
    """``every`` says how many anchors follow the frame: a count that disagrees with the
    payload's length is a chunk that cannot be decoded, never values from the wrong bytes."""
    path = tmp_path / "s.colvault"
    rows, params = _delta_store(path)
    want = np.cumsum(np.arange(200_000) % 7)
    params["every"] //= 2
    with sqlite3.connect(path / CATALOG) as conn:
        conn.execute("UPDATE chunks SET params = ? WHERE chunk_index = 1", (json.dumps(params),))
    conn.close()
    with colvault.open(path) as store:
        t = store["/t"]
        with pytest.raises(colvault.ChecksumError, match=r"chunk 1 .*cannot decode"):
            t[rows + 30_000]
        assert t[30_000]["x"] == want[30_000]  # the other chunks read as before
        np.testing.assert_array_equal(t.cols.x[rows - 5 : rows], want[rows - 5 : rows])
        assert not store.verify().ok


def test_delta_anchors_that_disagree_with_the_steps_are_found_by_every_read(
    tmp_path: Path,
) -> None:
    """An ``every`` one row off still counts as many anchors: a short read finds it against
    the frame's items per block, and every whole read of the chunk (scans, ``read()``,
    ``verify()``) checks the anchors against the steps it sums anyway."""
    path = tmp_path / "s.colvault"
    rows, params = _delta_store(path)
    assert (rows - 1) // params["every"] == (rows - 1) // (params["every"] + 1)
    params["every"] += 1
    with sqlite3.connect(path / CATALOG) as conn:
        conn.execute("UPDATE chunks SET params = ? WHERE chunk_index = 1", (json.dumps(params),))
    conn.close()
    with colvault.open(path) as store:
        with pytest.raises(colvault.ChecksumError, match="anchors disagree with its steps"):
            store["/t"].read()
        with pytest.raises(colvault.ChecksumError, match="disagree with its frame"):
            store["/t"][rows + 30_000]
        assert not store.verify().ok


DISAGREEING = Path(__file__).parent / "data" / "index_disagrees"


def test_recovery_cuts_nothing_when_an_index_disagrees_with_its_rows(tmp_path: Path) -> None:
    """A store whose catalog had 8 bytes flipped (found by test_flipped_bytes, about one trial
    in a thousand): the index on chunks(segment) lost the chunk that ends a segment last, so
    the manifest's word was that the segment ended one chunk earlier, where that chunk's crc
    checked out, and recovery cut the last committed chunk. sqlite's integrity check of the
    manifest's tables now runs before any cut."""
    path = tmp_path / "s.colvault"
    shutil.copytree(DISAGREEING, path)
    conn = sqlite3.connect(path / CATALOG)
    try:  # of an older format it would be refused at once, and prove nothing
        assert conn.execute("SELECT value FROM meta WHERE key = 'format'").fetchone() == (
            FORMAT_VERSION,
        )
    finally:
        conn.close()
    before = _segments(path)
    _exercise(path)  # opens for writing too: recovery runs
    assert _segments(path) == before


@pytest.mark.parametrize("change", [+5, -5])
def test_decimal_frame_length_that_disagrees_with_the_payload(tmp_path: Path, change: int) -> None:
    """A ``decimal`` chunk's ``clen`` that does not fit its payload (found by the flipped-bytes
    test, seed 1545421907): every read, the batch kernels' scans too, names the chunk as one
    that cannot be decoded, where a scan had raised an internal error."""
    path = tmp_path / "s.colvault"
    values = np.round(np.linspace(0, 100, 3000), 2)
    with colvault.open(path, "w") as store:
        store.create_table("/t", {"x": "f8"}, chunk_rows=1000).append({"x": values})
    with sqlite3.connect(path / CATALOG) as conn:
        (params,) = conn.execute("SELECT params FROM chunks WHERE chunk_index = 1").fetchone()
        params = json.loads(params)
        assert params["nexc"] == 0, params
        params["clen"] += change
        conn.execute("UPDATE chunks SET params = ? WHERE chunk_index = 1", (json.dumps(params),))
    conn.close()
    with colvault.open(path) as store:
        t = store["/t"]
        for read in (t.read, lambda: t.read_where("x > 20"), lambda: t[1500]):
            with pytest.raises(colvault.ChecksumError, match=r"chunk 1 .*does not hold a frame"):
                read()
        assert t.cols.x[:1000].tolist() == values[:1000].tolist()
        assert not store.verify().ok


def test_a_regular_flag_the_steps_do_not_bear_out_is_found(tmp_path: Path) -> None:
    """``regular`` sits in the catalog, outside the crc, and reads compute such a chunk from
    its params without its payload: a flag added to a chunk whose steps differ is damage that
    ``verify()`` names (it sums the steps), and a flag beside anchors is refused outright."""
    path = tmp_path / "s.colvault"
    with colvault.open(path, "w") as store:
        t = store.create_table("/t", {"x": "i8"}, chunk_rows=1024)
        t.append({"x": np.cumsum(np.arange(3000) % 5)})  # sorted, steps 0..4, no anchors
    with sqlite3.connect(path / CATALOG) as conn:
        (params,) = conn.execute("SELECT params FROM chunks WHERE chunk_index = 1").fetchone()
        params = json.loads(params)
        assert "every" not in params and "regular" not in params, params
        params["regular"] = 1
        conn.execute("UPDATE chunks SET params = ? WHERE chunk_index = 1", (json.dumps(params),))
    conn.close()
    with colvault.open(path) as store:
        report = store.verify()
        assert not report.ok
        assert any("chunk 1 of column 'x'" in d and "steps differ" in d for d in report.damage)
    rows, params = _delta_store(tmp_path / "anchored.colvault")
    params["regular"] = 1
    with sqlite3.connect(tmp_path / "anchored.colvault" / CATALOG) as conn:
        conn.execute("UPDATE chunks SET params = ? WHERE chunk_index = 1", (json.dumps(params),))
    conn.close()
    anchored = colvault.open(tmp_path / "anchored.colvault")
    with anchored, pytest.raises(colvault.CatalogError, match="regular clock has no anchors"):
        anchored["/t"][rows + 5]
