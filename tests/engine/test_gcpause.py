"""The collector paused around commits: put back as found, nested across threads, and never
left off in a child forked during a pause."""

from __future__ import annotations

import gc
import os
import threading

from colvault.engine.gcpause import paused_gc


def test_pauses_nest_and_the_collector_comes_back_after_the_last() -> None:
    assert gc.isenabled()
    first_in, second_out = threading.Event(), threading.Event()

    def other() -> None:
        with paused_gc():
            first_in.set()
            second_out.wait(10)

    thread = threading.Thread(target=other)
    with paused_gc():
        thread.start()
        first_in.wait(10)
    assert not gc.isenabled()  # the other thread's pause is still on
    second_out.set()
    thread.join()
    assert gc.isenabled()


def test_a_caller_that_turned_the_collector_off_keeps_it_off() -> None:
    gc.disable()
    try:
        with paused_gc():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_a_child_forked_during_a_pause_collects() -> None:
    read, write = os.pipe()
    with paused_gc():
        pid = os.fork()
        if pid == 0:
            try:
                os.write(write, b"1" if gc.isenabled() else b"0")
            finally:
                os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read, "rb") as f:
        assert f.read() == b"1"
    assert gc.isenabled()
