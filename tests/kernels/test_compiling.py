"""The compile notice: said once, only while one of our kernels is still compiling."""

import threading
from types import SimpleNamespace

from colvault.kernels import compiling


def _event(module: str) -> SimpleNamespace:
    return SimpleNamespace(
        data={"dispatcher": SimpleNamespace(py_func=SimpleNamespace(__module__=module))}
    )


def _notice() -> tuple[compiling.CompileNotice, threading.Event, list[int]]:
    said = threading.Event()
    count = [0]

    def say() -> None:
        count[0] += 1
        said.set()

    return compiling.CompileNotice(after=0.05, say=say), said, count


def test_a_long_compile_of_our_kernel_is_said_once():
    notice, said, count = _notice()
    notice.on_start(_event("colvault.kernels.csvtokens"))
    assert said.wait(5)
    notice.on_end(_event("colvault.kernels.csvtokens"))
    notice.on_start(_event("_colvault_kernel_abc"))
    threading.Event().wait(0.2)
    notice.on_end(_event("_colvault_kernel_abc"))
    assert count == [1]


def test_a_compile_that_ends_in_time_is_not_said():
    notice, said, count = _notice()
    notice.on_start(_event("colvault.kernels.zonemap"))
    notice.on_end(_event("colvault.kernels.zonemap"))
    assert not said.wait(0.3)
    assert count == [0]


def test_other_libraries_compiles_are_not_ours():
    notice, said, _ = _notice()
    notice.on_start(_event("numba.np.arrayobj"))
    notice.on_start(_event("mylab.kernels"))
    assert not said.wait(0.3)
    assert not compiling.ours(SimpleNamespace())


def test_watch_registers_one_listener():
    assert compiling.watch() is compiling.watch()
