"""``store.verify()``: read every committed chunk, check its crc and the manifest invariants.

Damage (a checksum mismatch, a truncated or missing segment, a manifest that does not add up) is
listed in ``damage``; unreferenced tails and stray segment files are harmless and listed in
``info`` (``compact()`` reclaims them).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import ChecksumError, ColvaultError
from . import leases
from .checksum import crc32
from .history import NEEDED
from .recovery import segment_files

if TYPE_CHECKING:
    from .session import Session


@dataclass
class VerifyReport:
    """What ``verify()`` found. ``ok`` is true when nothing is damaged."""

    damage: list[str] = field(default_factory=list)
    info: list[str] = field(default_factory=list)
    chunks_checked: int = 0

    @property
    def ok(self) -> bool:
        return not self.damage

    def __str__(self) -> str:
        lines = [f"{self.chunks_checked} chunks checked, {len(self.damage)} damaged"]
        lines += [f"DAMAGE: {d}" for d in self.damage]
        lines += [f"info: {i}" for i in self.info]
        return "\n".join(lines)


def verify_store(session: Session) -> VerifyReport:
    report = VerifyReport()
    report.damage += [f"catalog: {problem}" for problem in session.catalog.integrity()]
    try:
        _verify_nodes(session, report)
        _verify_history(session, report)
        with session.catalog.read() as conn:
            ends = dict(
                conn.execute("SELECT segment, MAX(offset + length) FROM chunks GROUP BY segment")
            )
    except ColvaultError as exc:  # the catalog cannot even be walked: nothing more to check
        report.damage.append(str(exc))
        return report
    hold = leases.held(session.path)
    for rel in segment_files(session.path):
        size = os.path.getsize(os.path.join(session.path, rel))
        end = ends.get(rel)
        if end is None:
            leased = hold is None or rel in hold
            why = "; a lease keeps it for a reader of an older snapshot" if leased else ""
            report.info.append(f"segment {rel}: {size} bytes, named by no manifest row{why}")
        elif size > end:
            report.info.append(f"segment {rel}: unreferenced tail of {size - end} bytes")
    return report


def _verify_nodes(session: Session, report: VerifyReport) -> None:
    """Read every chunk of every table and array; a node's damage does not stop the others."""
    index = session.index()[0]
    for path in sorted(index, key=lambda p: p.split("/")):
        rec = index[path]
        if rec.kind == "group":
            continue
        try:
            schema, _ = rec.data_parts(session.path, path)
            state = session.node_state(rec.id, schema)
        except ColvaultError as exc:
            report.damage.append(str(exc))
            continue
        src = session.chunk_source(path)
        for spec in schema.columns:
            for ref in state.columns[spec.id]:
                report.chunks_checked += 1
                try:
                    src.check(spec, ref)
                except ChecksumError as exc:
                    report.damage.append(str(exc))


def _verify_history(session: Session, report: VerifyReport) -> None:
    """Check the crc of every retired chunk a kept commit still sees (``open(as_of=)`` reads
    them)."""
    with session.catalog.read() as conn:
        names = _names_in_history(conn)
        rows = conn.execute(
            "SELECT c.node_id, c.col_id, c.chunk_index, c.segment, COALESCE(s.sealed, 0), "
            "c.offset, c.length, c.crc32 FROM chunks c LEFT JOIN segments s ON s.path = c.segment "
            f"WHERE c.retired_commit IS NOT NULL AND {NEEDED}"
        ).fetchall()
    for node_id, col_id, index, segment, sealed, offset, length, crc in rows:
        report.chunks_checked += 1
        try:
            with session.reader.chunk(segment, bool(sealed), offset, length) as data:
                if data is None:
                    problem = f"lies past the end of {segment} or its file is missing"
                elif crc32(data) != crc:
                    problem = f"does not match its checksum ({segment} at {offset})"
                else:
                    continue
        except (OSError, ValueError, TypeError, OverflowError) as exc:  # a damaged row
            problem = f"cannot be read ({exc!r})"
        path, column = names.get((node_id, col_id), (f"node {node_id}", col_id))
        report.damage.append(
            f"chunk {index} of column {column!r} of {path}, kept for history, {problem}"
        )


def _names_in_history(conn: Any) -> dict[tuple[str, str], tuple[str, str]]:
    """(node id, column id) → (the node's last path, the column's last name)."""
    out = {}
    for node_id, path, schema in conn.execute(
        "SELECT id, path, schema FROM node_versions WHERE schema IS NOT NULL ORDER BY since"
    ):
        try:  # a damaged record names nothing (its chunks are named by their ids)
            for c in json.loads(schema)["columns"]:
                out[(node_id, c["id"])] = (path, c["name"])
        except (ValueError, KeyError, TypeError):
            continue
    return out
