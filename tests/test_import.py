"""``import colvault`` stays light: Numba and blosc2 load with the first kernel or chunk."""

import subprocess
import sys

HEAVY = ("numba", "llvmlite", "blosc2", "httpx", "h5py", "pandas", "tqdm")


def _loaded_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_import_colvault_loads_neither_numba_nor_blosc2():
    assert _loaded_after("import colvault") == set()


def test_the_first_chunks_written_load_them(tmp_path):
    code = f"""
import numpy as np, colvault
with colvault.open({str(tmp_path / "s.colvault")!r}, "w") as store:
    store.create_table("/t", {{"x": "i8"}}).append({{"x": np.arange(1_000_000)}})
"""
    assert {"numba", "blosc2"} <= _loaded_after(code)
