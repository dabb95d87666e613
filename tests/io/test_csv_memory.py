"""A CSV import streams: its memory does not grow with the file (issue 5, Acceptance).

A child process (``_child_csv_memory.py``, started with ``subprocess``, never ``fork``: see
ARCHITECTURE.md on Numba's OpenMP runtime) writes a 64 MB and a 256 MB numeric CSV; then one
fresh child per file imports it while a thread samples ``RssAnon`` every 2 ms. The two peaks may
differ by less than :data:`MAX_GROWTH`: an importer that kept the parsed rows, the tokens, or the
file's text until the commit would add about 150 MB (three 8-byte columns of 9 M more rows) to
the larger import's peak. No timing is asserted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "_child_csv_memory.py"
MAX_GROWTH = 20_000_000
SIZES_MB = (64, 256)


def _run(*args: object) -> str:
    env = dict(os.environ)
    env.setdefault("NUMBA_CACHE_DIR", str(HERE.parents[1] / ".numba-cache"))
    env["COLVAULT_FSYNC"] = "0"  # durability is not what this test is about
    out = subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert out.returncode == 0, f"_child_csv_memory.py {args} failed:\n{out.stderr}"
    return out.stdout.strip().splitlines()[-1]


def test_peak_memory_does_not_grow_with_the_file(tmp_path: Path) -> None:
    files = {}
    for mb in SIZES_MB:
        path = tmp_path / f"r{mb}.csv"
        words = _run("write", path, mb).split()
        assert words[0] == "wrote"
        rows, size = int(words[1]), int(words[2])
        assert size == path.stat().st_size >= mb * 1_000_000
        files[mb] = (path, rows)

    got = {}
    for mb, (path, rows) in files.items():
        got[mb] = m = json.loads(_run("import", path, tmp_path / f"s{mb}.colvault"))
        path.unlink()  # the page cache of a deleted file is no one's memory; the disk is freed
        assert m["rows"] == rows
        assert m["dtypes"] == ["int64", "float64", "float64"]
        assert m["exact"], m  # first, middle and last rows read back as written
        assert m["samples"] > 10, m  # the sampler ran during the import

    small, large = got[SIZES_MB[0]], got[SIZES_MB[1]]
    growth = large["peak"] - small["peak"]
    assert growth < MAX_GROWTH, (
        f"peak RssAnon {small['peak'] / 1e6:.1f} MB importing 64 MB, "
        f"{large['peak'] / 1e6:.1f} MB importing 256 MB: +{growth / 1e6:.1f} MB "
        f"(limit {MAX_GROWTH / 1e6:.0f} MB); {small} {large}"
    )
