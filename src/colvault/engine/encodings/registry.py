"""The encodings by name, and the parsing of a manifest row's encoding and parameters."""

from __future__ import annotations

import functools
import json

from .base import Encoding, ParamsError
from .decimals import Decimal
from .dictionary import Dictionary
from .packed import Delta, FrameOfReference
from .plain import Blosc2, Raw

ENCODINGS: dict[str, type[Encoding]] = {
    cls.name: cls for cls in (Raw, Blosc2, FrameOfReference, Delta, Decimal, Dictionary)
}


@functools.lru_cache(maxsize=1 << 14)
def parse(name: str, params: str | None) -> Encoding:
    """The encoding a manifest row names, its parameters checked (:class:`ParamsError`
    naming what is wrong otherwise). Cached by the JSON text (the last 16k): a manifest's
    check and its load parse a row once, and a reload of a small manifest not at all."""
    cls = ENCODINGS.get(name)
    if cls is None:
        raise ParamsError(f"unknown encoding {name!r}")
    if cls in (Raw, Blosc2):
        return cls()
    try:
        p = json.loads(params) if isinstance(params, str) else None
    except ValueError as exc:
        raise ParamsError(f"{name} params {params!r} do not decode ({exc})") from None
    if not isinstance(p, dict):
        raise ParamsError(f"{name} params {params!r} are not an object")
    return cls.from_params(p, params)  # type: ignore[arg-type]
