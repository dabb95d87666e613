"""Recovery on open never cuts bytes that a commit landing while it looked names.

The defect: recovery read the catalog once, before taking each segment's lock. A writer that
committed (an append, or a stage) and released its segment between that read and the lock had
its committed bytes taken for an abandoned tail and cut: a reader then found the segment
"missing or truncated" (seen once in CI as a flaky Dask staging test)."""

from __future__ import annotations

import numpy as np
import pytest

import colvault
from colvault.engine import recovery


def _race_on_first_lock(monkeypatch: pytest.MonkeyPatch, land: object) -> list[str]:
    """Make recovery's first ``try_lock`` run ``land()`` just before it locks."""
    real = recovery.try_lock
    seen: list[str] = []

    def racing(path: str) -> int | None:
        if not seen:
            seen.append(path)
            land()  # type: ignore[operator]
        return real(path)

    monkeypatch.setattr(recovery, "try_lock", racing)
    return seen


def test_an_append_committed_while_recovery_looks_is_kept(store_path, monkeypatch) -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 1 << 60, 400_000)  # incompressible: over a run's bytes, written at once
    with colvault.open(store_path, "w") as store:
        store.create_table("/t", {"x": "i8"}, chunk_rows=4096).append({"x": x[:10]})
    writer = colvault.open(store_path, "a")
    writer["/t"].append({"x": x[10:]})  # full chunks: written, in a segment it holds

    def land() -> None:
        writer.commit()
        writer.close()  # releases its segment: recovery may lock it now

    seen = _race_on_first_lock(monkeypatch, land)
    with colvault.open(store_path, "a"):
        pass
    assert seen  # the race ran
    with colvault.open(store_path) as store:
        np.testing.assert_array_equal(store["/t"].col("x"), x)
        assert store.verify().ok
