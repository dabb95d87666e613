"""Property: what ``colvault query --format csv`` writes, ``colvault import-csv`` reads back
as the same values (missing values included); ``--format json`` gives the same values too.

In-process (``cli.main``), as a subprocess per example would take minutes; the subprocess
tests of each command are in ``test_cli_commands.py``.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import colvault
from colvault.cli import main

texts = st.text(alphabet="abcxyz ,;\"'", min_size=0, max_size=6).map(lambda s: "q" + s)
rows = st.lists(
    st.tuples(
        st.integers(-(2**62), 2**62),
        st.floats(allow_nan=False, width=64),
        st.one_of(st.none(), st.integers(-1000, 1000)),
        st.one_of(st.none(), texts),
    ),
    max_size=30,
).map(lambda rows: [(1, 0.5, 7, "qq"), *rows])  # a column with no value at all reads as float64


@settings(deadline=None, max_examples=10, suppress_health_check=[HealthCheck.too_slow])
@given(rows)
def test_query_csv_imports_back_and_json_agrees(data):
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "s.colvault"
        ints, floats, counts, notes = (list(c) for c in zip(*data, strict=True))
        with colvault.open(store, "w") as s:
            t = s.create_table(
                "/t",
                {
                    "i": "i8",
                    "f": "f8",
                    "n": {"dtype": "i8", "nullable": True},
                    "s": {"dtype": "U8", "nullable": True},
                },
            )
            t.append(
                {
                    "i": ints,
                    "f": floats,
                    "n": np.ma.MaskedArray([c or 0 for c in counts], [c is None for c in counts]),
                    "s": np.ma.MaskedArray([x or "" for x in notes], [x is None for x in notes]),
                }
            )
            s.commit()
        out = Path(tmp) / "q.csv"
        assert main(["query", f"{store}:/t", "i == i", "--format", "csv", "--out", str(out)]) == 0
        schema = ["--schema", "i=i8", "--schema", "f=f8"]
        assert main(["import-csv", f"{store}:/back", str(out), "--quiet", *schema]) == 0
        with colvault.open(store) as s:
            back = s["/back"].read()
        assert back["i"].tolist() == ints
        assert back["f"].tolist() == floats
        assert np.ma.MaskedArray(back["n"]).tolist() == counts
        assert np.ma.MaskedArray(back["s"]).tolist() == notes
        json_out = Path(tmp) / "q.json"
        assert main(["query", f"{store}:/t", "i == i", "--format", "json", "--out",
                     str(json_out)]) == 0  # fmt: skip
        records = json.loads(json_out.read_text())
        finite = [(i, f if np.isfinite(f) else None, n, x) for i, f, n, x in data]
        assert [(r["i"], r["f"], r["n"], r["s"]) for r in records] == finite  # JSON: no inf


def test_json_keeps_the_text_nat_and_writes_null_for_a_missing_time(tmp_path):
    store = tmp_path / "s.colvault"
    with colvault.open(store, "w") as s:
        t = s.create_table("/t", {"name": "U3", "when": "M8[s]"})
        t.append({"name": ["NaT", "x"], "when": np.array(["NaT", "2020-01-02"], "M8[s]")})
        s.commit()
    out = tmp_path / "q.json"
    assert (
        main(["query", f"{store}:/t", "name == name", "--format", "json", "--out", str(out)]) == 0
    )
    records = json.loads(out.read_text())
    assert records == [
        {"name": "NaT", "when": None},
        {"name": "x", "when": "2020-01-02T00:00:00"},
    ]
