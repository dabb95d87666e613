"""Looking after a store: ``verify``, ``compact``, and ``warmup`` of the kernels."""

from __future__ import annotations

import argparse
import os
import sys

from .common import Failure, open_at


def verify_command(args: argparse.Namespace) -> int:
    """``colvault verify STORE``: every chunk's checksum; damage named, exit status 1."""
    with open_at(args.store) as store:
        report = store.verify()
    print(report)
    if not report.ok:
        raise Failure(f"{len(report.damage)} damaged item(s) in {args.store} (listed above)")
    return 0


def compact_command(args: argparse.Namespace) -> int:
    """``colvault compact STORE``: reclaim bytes of removed and replaced data."""
    with open_at(args.store, "r+") as store:
        report = store.compact()
    print(report)
    return 0


def warmup_command(processes: int | None) -> int:
    from ..warmup import warmup

    where = os.environ.get("NUMBA_CACHE_DIR") or (
        "Numba's cache (beside the package, or under ~/.cache when that is read-only)"
    )
    print(f"compiling colvault's kernels for this machine into {where}:", flush=True)
    seconds = warmup(processes, sys.stdout)
    print(f"done in {seconds:.1f} s; later processes load them from the cache")
    return 0
