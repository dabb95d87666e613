"""Shared test set-up: hypothesis profiles and a store factory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# Child-process scripts (``_child_*.py``) are run by tests, never collected or doctested.
collect_ignore_glob = ["_*.py", "engine/_*.py"]

os.environ.setdefault("NUMBA_CACHE_DIR", str(Path(__file__).resolve().parents[1] / ".numba-cache"))

settings.register_profile(
    "ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=25, deadline=None)
settings.register_profile("thorough", max_examples=500, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture
def store_path(tmp_path: Path) -> str:
    return str(tmp_path / "test.colvault")
