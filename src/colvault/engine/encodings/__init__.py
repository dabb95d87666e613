"""Per-chunk encodings: what sits between a column chunk and its compressed bytes.

One module per encoding, each a frozen dataclass of its parameters (:mod:`.base`); the
registry parses a manifest row into one (:mod:`.registry`), the encoder chooses and applies
them as a writer cuts chunks (:mod:`.encoder`).

Every chunk is encoded on its own and its manifest row names the encoding and its parameters
(JSON), so any chunk decodes without its neighbours and two writers never have to agree:

- ``raw``: the values' bytes (codec ``"none"``).
- ``blosc2``: one blosc2 frame of the values.
- ``for``: integers (and datetimes) minus the chunk minimum, narrowed to the smallest unsigned
  width; params ``base``, ``w`` (narrow dtype).
- ``delta``: sorted integers as steps minus the smallest step (a fixed-period clock becomes
  zeros); params ``first``, ``step``, ``w``, then ``regular`` (a fixed step), or ``clen`` and
  ``every`` when the frame is followed by anchors (the values of every block's first row).
- ``dict``: category text as codes (the narrowest unsigned type for the number of distinct
  values) into a per-chunk dictionary in order of first appearance (as Parquet keeps one per
  row group); the payload is the codes' frame, then a frame of the dictionary: uint32 UTF-8
  lengths followed by the UTF-8 bytes; params ``w``, ``n`` (values in the dictionary),
  ``clen``, ``raw`` (frames are raw bytes: codec none).
- ``decimal``: floats that are exact decimals stored as integers ``k`` with value ``k / 10**e``
  (the idea of ALP), narrowed like ``for``; values that do not round-trip bit for bit are
  exceptions stored after the frame (uint32 positions, then their raw bits); params ``e``,
  ``base``, ``w``, ``clen`` (frame length), ``nexc``.
"""

from .base import Encoding, ParamsError, decompress_into, unpack, unsigned
from .decimals import Decimal
from .dictionary import Dictionary
from .encoder import (
    BITSHUFFLE_GAIN,
    MAX_EXCEPTION_FRACTION,
    TRIAL_EVERY,
    ColumnEncoder,
    Encoded,
    raw,
)
from .packed import Delta, FrameOfReference
from .plain import Blosc2, Raw
from .registry import ENCODINGS, parse
from .validity import decode_validity, validity_frame

__all__ = [
    "BITSHUFFLE_GAIN",
    "ENCODINGS",
    "MAX_EXCEPTION_FRACTION",
    "TRIAL_EVERY",
    "Blosc2",
    "ColumnEncoder",
    "Decimal",
    "Delta",
    "Dictionary",
    "Encoded",
    "Encoding",
    "FrameOfReference",
    "ParamsError",
    "Raw",
    "decode_validity",
    "decompress_into",
    "parse",
    "raw",
    "unpack",
    "unsigned",
    "validity_frame",
]
