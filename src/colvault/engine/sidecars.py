"""The two sidecars of every node, committed atomically with the data.

``node.attrs`` is the key-value sidecar (dbm-like): JSON values, numpy scalars and small arrays
converted to plain Python on the way in, keys iterated in sorted order. ``node.objects`` is the
object sidecar (shelve-like): any picklable object, pickled on assignment (later mutation of the
object does not change what is stored), unpickled through the restricted unpickler. Both show this
process's uncommitted changes at once and everyone else's after their commit.
"""

from __future__ import annotations

import json
from abc import abstractmethod
from collections.abc import Iterator, MutableMapping
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import CatalogError, SchemaError
from . import pickles
from .pending import DELETED

if TYPE_CHECKING:
    from .session import Session

#: Largest numpy array ``attrs`` converts to a list; bigger ones belong in an Array or objects.
MAX_ATTR_ARRAY = 10_000


def _to_json(value: Any, where: str) -> Any:
    if isinstance(value, np.ndarray):
        if value.size > MAX_ATTR_ARRAY:
            raise SchemaError(
                f"{where}: array of {value.size} elements is too large for attrs "
                f"(limit {MAX_ATTR_ARRAY}); store it in an Array or in node.objects"
            )
        value = value.tolist() if value.dtype.kind not in "Mm" else value.astype(str).tolist()
    elif isinstance(value, np.datetime64 | np.timedelta64):
        return str(value)
    elif isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value
    if isinstance(value, list | tuple):
        return [_to_json(v, where) for v in value]
    if isinstance(value, dict):
        for k in value:
            if not isinstance(k, str):
                raise SchemaError(f"{where}: dict keys must be str for attrs, not {k!r}")
        return {k: _to_json(v, where) for k, v in value.items()}
    raise SchemaError(
        f"{where}: {type(value).__name__} is not a JSON value; store it in node.objects instead"
    )


def _utf8(text: str) -> bool:
    """Whether ``text`` has a UTF-8 form (a lone surrogate, such as ``"\\ud800"``, has none)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class _Sidecar(MutableMapping[str, Any]):
    kind = ""

    def __init__(self, session: Session, node_id: str) -> None:
        self._session = session
        self._node_id = node_id

    def _where(self, key: str) -> str:
        return f"{self._session.path_of(self._node_id)}.{self.kind}[{key!r}]"

    @abstractmethod
    def _encode(self, key: str, value: Any) -> bytes: ...

    @abstractmethod
    def _decode(self, key: str, blob: bytes) -> Any: ...

    def _pending(self) -> dict[str, bytes | None]:
        return self._session.pending.sidecars.get((self._node_id, self.kind), {})

    def _check_key(self, key: Any) -> str:
        if not isinstance(key, str):
            raise TypeError(f"{self.kind} keys must be str, not {type(key).__name__}")
        if not _utf8(key):  # the catalog keeps keys as UTF-8 text
            raise SchemaError(
                f"{self._where(key)}: a key holding a lone surrogate has no UTF-8 form"
            )
        return key

    def __getitem__(self, key: str) -> Any:
        self._session.check_open()
        pending = self._pending()
        if key in pending:
            blob = pending[key]
        else:
            with self._session.catalog.read() as conn:
                row = conn.execute(
                    "SELECT value FROM sidecars WHERE node_id = ? AND kind = ? AND key = ?",
                    (self._node_id, self.kind, key),
                ).fetchone()
                # listed, yet not found, in one snapshot: the catalog's index and its rows
                # disagree (asked only on a miss; another process's commit cannot fool it)
                listed = row is None and key in self._committed_keys(conn)
            if listed:
                raise CatalogError(
                    self._session.path,
                    f"{self._where(key)} is listed but cannot be read (verify() reports "
                    "what sqlite's integrity check finds)",
                )
            blob = None if row is None else row[0]
        if blob is None:
            raise KeyError(key)
        return self._decode(key, blob)

    def __setitem__(self, key: str, value: Any) -> None:
        self._session.check_writable()
        self._check_key(key)
        blob = self._encode(key, value)
        self._session.path_of(self._node_id)  # the node must still exist
        self._session.pending.sidecars.setdefault((self._node_id, self.kind), {})[key] = blob

    def __delitem__(self, key: str) -> None:
        self._session.check_writable()
        if key not in self:
            raise KeyError(key)
        self._session.pending.sidecars.setdefault((self._node_id, self.kind), {})[key] = DELETED

    def _committed_keys(self, conn: Any) -> set[str]:
        return {
            r[0]
            for r in conn.execute(
                "SELECT key FROM sidecars WHERE node_id = ? AND kind = ?",
                (self._node_id, self.kind),
            )
        }

    def _keys(self) -> list[str]:
        self._session.check_open()
        with self._session.catalog.read() as conn:
            keys = self._committed_keys(conn)
        for key, blob in self._pending().items():
            if blob is DELETED:
                keys.discard(key)
            else:
                keys.add(key)
        return sorted(keys)

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys())

    def __len__(self) -> int:
        return len(self._keys())

    def __contains__(self, key: object) -> bool:
        try:
            self[key]  # type: ignore[index]
        except KeyError:
            return False
        return True

    def __repr__(self) -> str:
        return f"<{self.kind} of {self._session.path_of(self._node_id)}: {self._keys()}>"


class Attrs(_Sidecar):
    """Key-value metadata of a node: ``str`` keys, JSON values.

    >>> import colvault, tempfile, os
    >>> with colvault.open(os.path.join(tempfile.mkdtemp(), "s.colvault"), "w") as store:
    ...     store.attrs["instrument"] = "LX-200"
    ...     store.attrs["gain"] = np.float32(1.5)
    ...     sorted(store.attrs.items())
    [('gain', 1.5), ('instrument', 'LX-200')]
    """

    kind = "attrs"

    def _encode(self, key: str, value: Any) -> bytes:
        converted = _to_json(value, self._where(key))
        text = json.dumps(converted, ensure_ascii=False)
        if not _utf8(text):
            raise SchemaError(
                f"{self._where(key)}: text holding a lone surrogate has no UTF-8 form"
            )
        return text.encode()

    def _decode(self, key: str, blob: bytes) -> Any:
        try:
            return json.loads(blob)
        except (ValueError, TypeError) as exc:  # UnicodeDecodeError and JSONDecodeError too
            raise CatalogError(
                self._session.path, f"{self._where(key)} does not decode as JSON ({exc})"
            ) from None


class Objects(_Sidecar):
    """Pickled Python objects of a node (shelve-like), loaded through an allow-list.

    >>> import colvault, tempfile, os, datetime
    >>> with colvault.open(os.path.join(tempfile.mkdtemp(), "s.colvault"), "w") as store:
    ...     store.objects["calibration"] = {"offset": 0.25, "date": datetime.date(2025, 3, 1)}
    ...     store.objects["calibration"]["date"]
    datetime.date(2025, 3, 1)
    """

    kind = "objects"

    def _encode(self, key: str, value: Any) -> bytes:
        try:
            return pickles.dumps(value)
        except Exception as exc:
            raise SchemaError(
                f"{self._where(key)}: cannot pickle {type(value).__name__}: {exc}"
            ) from exc

    def _decode(self, key: str, blob: bytes) -> Any:
        return pickles.loads(bytes(blob), self._where(key), self._session.trust_pickles)
