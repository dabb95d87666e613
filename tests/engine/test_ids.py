"""Node and column ids: unique, in the order they were made, and never shared with a fork."""

from __future__ import annotations

import os

from colvault.engine.schema import new_id


def test_ids_are_unique_hex_in_the_order_they_were_made() -> None:
    ids = [new_id() for _ in range(20_000)]  # many draws of the random pool
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
    stamps = [i[:12] for i in ids]  # milliseconds first: the catalog's indexes grow at one end
    assert stamps == sorted(stamps)


def test_a_forked_child_draws_ids_of_its_own() -> None:
    new_id()  # the parent holds a pool of random parts
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids go to the parent
        try:
            os.write(write, "".join(new_id() for _ in range(50)).encode())
        finally:
            os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read) as f:
        child = f.read()
    theirs = {child[k : k + 32][12:] for k in range(0, len(child), 32)}
    mine = {new_id()[12:] for _ in range(50)}
    assert len(theirs) == 50 and not theirs & mine
