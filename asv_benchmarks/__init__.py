"""Benchmarks live apart from the tests so that timing noise never fails a test run.

``bench_*`` modules are asv suites, run from the repository root (config: ``asv.conf.json``)::

    asv run --python=same --quick --show-stderr                # check they run; nothing saved
    asv run --python=same --set-commit-hash=$(git rev-parse HEAD)   # record this commit

``compare`` runs the full-size comparisons with PyTables and DuckDB in one process.
"""
