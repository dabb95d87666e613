"""``colvault warmup`` compiles what a first session needs: afterwards it compiles nothing."""

import subprocess
import sys

from colvault import cli, warmup

FIRST_SESSION = """
import os, sys, tempfile
import numpy as np
from numba.core import event
import colvault
from colvault.kernels.compiling import ours

compiled = []

class Record(event.Listener):
    def on_start(self, ev):
        func = ev.data["dispatcher"].py_func
        if ours(ev.data["dispatcher"]) and not func.__module__.startswith("_colvault_kernel_"):
            compiled.append(f"{func.__module__}.{func.__qualname__}{ev.data['args']}")
    def on_end(self, ev):
        pass

event.register("numba:compile", Record())
work = tempfile.mkdtemp()
csv = os.path.join(work, "f.csv")
with open(csv, "w") as f:
    f.write("id,value,station,when\\n")
    for i in range(300):
        f.write(f"{i},{i / 4},{['a', 'b'][i % 2]},2024-01-{1 + i % 28:02d} 10:00:00\\n")
with colvault.open(os.path.join(work, "s.colvault"), "w") as store:
    n = 20_000
    t = store.create_table("/run", {"t": "M8[ns]", "sensor": "i4", "value": "f8", "temp": "f4"})
    t.append({"t": np.arange(n).astype("M8[s]").astype("M8[ns]"), "sensor": np.arange(n) % 100,
              "value": np.linspace(0, 1, n), "temp": np.linspace(15, 25, n).astype("f4")})
    store.commit()
    t.stats("value")
    t.read()
    colvault.import_csv(csv, store, "/csv", progress=False)
print("\\n".join(compiled))
"""


def test_warmup_names_each_workload(capsys):
    assert cli.main(["warmup", "--processes", "2"]) == 0
    out = capsys.readouterr().out
    for name in warmup.jobs():
        assert f"  {name}: " in out
    assert "done in" in out


def test_after_warmup_a_first_session_compiles_no_fixed_kernel():
    warmup.warmup(processes=2)
    out = subprocess.run(
        [sys.executable, "-c", FIRST_SESSION], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "", f"compiled after warmup:\n{out.stdout}"


def test_warmup_takes_the_kernels_even_for_small_inputs(monkeypatch):
    """Small inputs take numpy or Python versions while a kernel is not compiled: warm-up
    turns that off, to compile every kernel."""
    from colvault.kernels import compiling

    seen: list[int] = []
    monkeypatch.setattr(warmup, "jobs", lambda: {"probe": lambda _: seen.append(compiling.SMALL)})
    warmup.warmup(processes=1)
    assert seen == [0] and compiling.SMALL > 0
