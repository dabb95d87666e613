"""Blocks of whole records: a file's bytes cut at record boundaries, for the importer.

Why: the importer parses blocks in parallel, so each must hold whole records. A block without
the quote character holds records that end at its line ends: it is cut after its last LF and
handed on as it is, a *plain* block (:mod:`.plain` parses it without a tokenizer). Any other
block is tokenized here (:mod:`colvault.kernels.csv.tokens`), which finds where its last complete
record ends. What follows the cut is carried over to the front of the next block, into the room
kept there (:class:`.source.Piece`), so the block itself is never copied. This runs in the
importer's reading thread, ahead of the parsing.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ...kernels.csv import blockscan
from ...kernels.csv import tokens as csvtokens
from .source import Piece


@dataclass
class Block:
    """Records' bytes, their tokens (None: a plain block), and whether the file ends with it."""

    buf: np.ndarray
    tok: csvtokens.Tokens | None
    final: bool
    too_long: bool = False  # a record runs on past ``max_record`` bytes (buf: all of them)
    cr: bool = True  # a plain block may hold a CR byte (False: it has none)


def record_blocks(
    source: Iterator[Piece], delimiter: int, quotechar: int, comment: int, max_record: int
) -> Iterator[Block]:
    """The blocks of ``source`` (a file's UTF-8 bytes, a piece at a time) cut at record
    boundaries. A file's first block is read whole by the general path, final or not (its rows
    decide the types, and a small file stays one block); from a final block the plain part is
    cut off as elsewhere and only the line after its last LF is tokenized."""
    carry = np.empty(0, np.uint8)  # bytes after the last cut: the start of a record
    ahead = next(source, None)
    started = False  # a block was handed on
    while True:
        piece, ahead = ahead, (next(source, None) if ahead is not None else None)
        final = ahead is None
        if piece is None:
            buf, (lf, quote, cr) = carry, (-1, False, False)
        else:
            _, carry_quote, carry_cr = blockscan.facts(carry, quotechar)
            lf, quote, cr = blockscan.facts(piece.data, quotechar)
            quote, cr = quote or carry_quote, cr or carry_cr
            buf = piece.behind(carry)  # carry, then the piece: its bytes are not copied
        if (started or not final) and piece is not None and not quote and lf >= 0:
            cut = len(carry) + lf + 1
            yield Block(buf[:cut], None, False, cr=cr)
            started = True
            carry = buf[cut:].copy()
            if not final:
                continue
            buf, carry = carry, np.empty(0, np.uint8)  # the last line, without its end
        started = True
        tok = csvtokens.tokenize(buf, delimiter, quotechar, comment, final)
        if tok.consumed == 0 and not final and tok.error == csvtokens.OK:
            if len(buf) > max_record:
                yield Block(buf, None, False, too_long=True)
                return
            carry = buf
            continue
        yield Block(buf, tok, final)
        if final or tok.error != csvtokens.OK:
            return
        carry = buf[tok.consumed :].copy()
