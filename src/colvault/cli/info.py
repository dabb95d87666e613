"""``colvault info``: the tree below a node, with rows, dtypes, sizes, ratios and zone maps."""

from __future__ import annotations

import argparse
import json
import math
from typing import Any, cast

import numpy as np

from ..engine.nodes import DataNode
from ..errors import ColvaultError
from .common import node_at, one_line, open_at, split_target


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000  # type: ignore[assignment]
    return f"{n:.1f} TB"  # pragma: no cover


def _ratio(raw: int | None, stored: int) -> float | None:
    return round(raw / stored, 3) if raw and stored else None


def _jsonable(value: Any) -> Any:
    """Attribute values as JSON can hold them (numpy scalars and arrays as Python values)."""
    if isinstance(value, np.ndarray | np.generic):
        return _jsonable(value.tolist())
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def node_info(node: Any) -> dict[str, Any]:
    """What ``colvault info --json`` says of one node: kind, rows, sizes, and per column of a
    table its dtype, chunks, encodings, bytes, ratio, missing values and whether it has zone
    maps (the per-chunk minima and maxima that let a query skip chunks)."""
    out: dict[str, Any] = {"path": node.path, "kind": getattr(node, "kind", "group")}
    try:
        attrs = {k: _jsonable(node.attrs[k]) for k in node.attrs}
    except ColvaultError as exc:
        attrs = {"error": one_line(exc)}
    if isinstance(node, DataNode):
        nrows, raw, stored = node.footprint()
        shape = list(cast(Any, node).shape)
        out.update(rows=nrows, shape=shape, raw_bytes=raw, stored_bytes=stored)
        out["ratio"] = _ratio(raw, stored)
        columns = []
        for c in node.storage():
            columns.append(
                {
                    "name": c.name,
                    "dtype": c.spec.type_name + (f" {c.spec.shape}" if c.spec.shape else ""),
                    "nullable": bool(c.spec.nullable),
                    "chunks": c.chunks,
                    "encodings": dict(sorted(c.encodings.items())),
                    "raw_bytes": c.raw_bytes,
                    "stored_bytes": c.stored_bytes,
                    "ratio": _ratio(c.raw_bytes, c.stored_bytes),
                    "nulls": c.nulls,
                    "zone_map": bool(c.spec.has_zone_map),
                }
            )
        out["columns"] = columns
        out["zone_map_columns"] = sum(c["zone_map"] for c in columns)
    out["attrs"] = attrs
    return out


def _print_attrs(info: dict[str, Any], pad: str) -> None:
    if info["attrs"]:
        text = ", ".join(
            f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in info["attrs"].items()
        )
        print(f"{pad}    attrs: {text if len(text) <= 90 else text[:87] + '...'}")


def _print_info(info: dict[str, Any], depth: int) -> None:
    pad = "  " * depth
    if info["kind"] == "group":
        print(f"{pad}{info['path']}  (group)")
        _print_attrs(info, pad)
        return
    ratio = f"{info['ratio']:.2f}x" if info["ratio"] else "-"
    if info["kind"] == "table":
        shape = f"{info['rows']:,} rows x {len(info['columns'])} columns"
        zones = f"; zone maps on {info['zone_map_columns']}/{len(info['columns'])} columns"
    else:
        dtype = info["columns"][0]["dtype"].split()[0]  # the cell shape is in the shape
        shape = " x ".join(f"{n:,}" for n in info["shape"]) + f" {dtype}"
        zones = ""
    print(
        f"{pad}{info['path']}  ({info['kind']}, {shape}; {_size(info['raw_bytes'])} raw, "
        f"{_size(info['stored_bytes'])} stored, {ratio}{zones})"
    )
    _print_attrs(info, pad)
    if info["kind"] != "table":
        return
    head = ("column", "dtype", "chunks", "raw", "stored", "ratio", "nulls", "zones", "encodings")
    rows = [head]
    for c in info["columns"]:
        rows.append(
            (
                c["name"],
                c["dtype"] + (" (nullable)" if c["nullable"] else ""),
                f"{c['chunks']:,}",
                _size(c["raw_bytes"]),
                _size(c["stored_bytes"]),
                f"{c['ratio']:.2f}x" if c["ratio"] else "-",
                f"{c['nulls']:,}",
                "yes" if c["zone_map"] else "no",
                ", ".join(f"{k} {n}" for k, n in c["encodings"].items()),
            )
        )
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(head))]
    for r in rows:
        cells = [
            str(v).ljust(w) if i in (0, 1, 8) else str(v).rjust(w)
            for i, (v, w) in enumerate(zip(r, widths, strict=True))
        ]
        print(pad + "    " + "  ".join(cells).rstrip())


def info_command(args: argparse.Namespace) -> int:
    """``colvault info STORE[:/path] [--json]``: the tree below a node, with sizes."""
    store_path, path = split_target(args.target)
    with open_at(store_path, as_of=args.as_of) as store:
        top = node_at(store, path)
        nodes = [node_info(n) for n in store.walk(top.path)]
        if args.json:
            print(json.dumps({"store": store.path, "nodes": nodes}, indent=2))
            return 0
        print(store.path)
        base = top.path.count("/") - (top.path == "/")
        for n in nodes:
            _print_info(n, n["path"].count("/") - (n["path"] == "/") - base)
    return 0
