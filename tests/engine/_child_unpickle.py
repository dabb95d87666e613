"""Child of test_pickles.py: load pickles through the restricted unpickler, then touch everything.

Usage: ``_child_unpickle.py HEADROOM_BYTES``. After importing, the child caps its address space
(RLIMIT_AS) at what it uses plus HEADROOM_BYTES, so a pickle that expands without bound fails
fast instead of eating the machine. It prints ``ready``, then reads one pickle per stdin line
(hex) and prints one line per pickle:

- ``ok <type>``: loaded, and every array, scalar and dtype in it was read in full (or reading
  raised a Python exception, e.g. numpy's for a 'U' array holding an invalid code point, or
  RecursionError from the repr of deeply nested lists: errors, not crashes);
- ``touch-error: MemoryError``: reading it expanded out of proportion;
- ``refused: <message>``: ``UnsafePickleError``;
- ``error: <type>: <message>``: any other exception escaped ``loads`` (a broken contract).

A crash (a signal) or a hang shows as the missing line. ``COLVAULT_PICKLES_UNDER_TEST`` may name
another copy of pickles.py to load instead (to check that the tests fail on an older version).
"""

from __future__ import annotations

import gc
import importlib.util
import os
import resource
import sys
from typing import Any

import numpy as np

from colvault import UnsafePickleError

path = os.environ.get("COLVAULT_PICKLES_UNDER_TEST")
if path:
    spec = importlib.util.spec_from_file_location("colvault.engine._pickles_under_test", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    loads = module.loads
else:
    from colvault.engine.pickles import loads


def address_space() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmSize")


def touch_array(a: np.ndarray) -> None:
    a.tobytes()
    repr(a)
    a.tolist()
    todo = [a]
    while todo:
        x = todo.pop()
        if x.dtype.names:
            todo.extend(x[name] for name in x.dtype.names)
        else:
            x.copy()


def touch(root: Any) -> None:
    """Read every array, scalar and dtype reachable from ``root``; hash what is hashable."""
    seen: set[int] = set()
    todo = [root]
    while todo:
        x = todo.pop()
        if id(x) in seen:
            continue
        seen.add(id(x))
        if isinstance(x, (list, tuple, set, frozenset)):
            todo.extend(x)
        elif isinstance(x, dict):
            todo.extend(x.keys())
            todo.extend(x.values())
        elif isinstance(x, slice):
            todo.extend((x.start, x.stop, x.step))
        elif isinstance(x, np.ndarray):
            touch_array(x)
            todo.append(x.dtype)
            if x.dtype.hasobject:
                todo.extend(x.ravel().tolist())
        elif isinstance(x, np.generic):
            repr(x)
            x.tobytes()
            if isinstance(x, np.void) and x.dtype.names:
                todo.extend(x[name] for name in x.dtype.names)
            todo.append(x.dtype)
        elif isinstance(x, np.dtype):
            repr(x)
            str(x)
            todo.extend(entry[0] for entry in (x.fields or {}).values())
            if x.subdtype is not None:
                todo.append(x.subdtype[0])
        if isinstance(x, tuple):
            try:
                hash(x)
            except TypeError:
                pass  # holds something unhashable
    repr(root)


def main() -> None:
    headroom = int(sys.argv[1])
    limit = address_space() + headroom
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    print("ready", flush=True)
    for line in sys.stdin:
        data = bytes.fromhex(line.strip())
        try:
            obj = loads(data, "objects['fuzz'] of /t", False)
        except UnsafePickleError as exc:
            print(f"refused: {' '.join(str(exc).split())}", flush=True)
            continue
        except BaseException as exc:
            print(f"error: {type(exc).__name__}: {' '.join(str(exc).split())[:300]}", flush=True)
            continue
        kind = type(obj).__name__
        try:
            touch(obj)
        except MemoryError:  # the result expands out of proportion when read
            print("touch-error: MemoryError", flush=True)
            continue
        except Exception as exc:  # numpy's or Python's refusal to read something odd
            kind += f" (reading it raised {type(exc).__name__})"
        del obj
        gc.collect()
        print(f"ok {kind}", flush=True)


if __name__ == "__main__":
    main()
