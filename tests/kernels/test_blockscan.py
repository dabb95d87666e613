"""The reading thread's one pass over a block finds what ``bytes.rfind``/``in`` find."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from colvault.kernels.csv.blockscan import block_facts, block_facts_numpy

# bytes the facts are about, and others, at any position of a block of any length
data = st.lists(st.sampled_from(b'\n\r"ab,'), max_size=80).map(bytes)


@given(data, st.sampled_from([34, 39, -1]))
def test_block_facts_equal_python_searches(block: bytes, quotechar: int) -> None:
    buf = np.frombuffer(block, np.uint8) if block else np.empty(0, np.uint8)
    for facts in (block_facts, block_facts_numpy):  # numpy: a small file's, kernel cold
        last, quote, cr = facts(buf, quotechar)
        assert last == block.rfind(b"\n")
        assert quote == (quotechar >= 0 and bytes([quotechar]) in block)
        assert cr == (b"\r" in block)


def test_block_facts_of_a_large_block() -> None:
    block = bytearray(b"12,3.5\n" * 150_000)
    buf = np.frombuffer(block, np.uint8)
    assert block_facts(buf, 34) == (len(block) - 1, False, False)
    block[500_001] = 34
    block[900_003] = 13
    assert block_facts(np.frombuffer(block, np.uint8), 34) == (len(block) - 1, True, True)
