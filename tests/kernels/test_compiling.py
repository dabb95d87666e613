"""The compile notice: said once, only while one of our kernels is still compiling."""

from types import SimpleNamespace
from typing import ClassVar

from colvault.kernels import compiling


def _event(module: str) -> SimpleNamespace:
    func = SimpleNamespace(__module__=module)
    return SimpleNamespace(data={"dispatcher": SimpleNamespace(py_func=func)})


class _Timer:
    """A timer that fires only when the test says so."""

    made: ClassVar[list["_Timer"]] = []

    def __init__(self, seconds: float, callback) -> None:
        self.seconds, self.callback, self.started = seconds, callback, False
        _Timer.made.append(self)

    def start(self) -> None:
        self.started = True

    def fire(self) -> None:
        self.callback()


def _notice(early=None) -> tuple[compiling.CompileNotice, list[str]]:
    said: list[str] = []
    _Timer.made = []
    notice = compiling.CompileNotice(
        after=1.0, say=lambda: said.append("said"), timer=_Timer, early=early
    )
    return notice, said


def test_the_first_zone_map_compile_starts_the_csv_helper_early_once():
    started: list[int] = []
    notice, _ = _notice(early=lambda: started.append(1))
    notice.on_start(_event("colvault.kernels.query.aggcore"))  # a query session: no helper
    notice.on_start(_event("_colvault_kernel_abc"))
    assert started == []
    notice.on_start(_event("colvault.kernels.encoding.zonemap"))  # a session writing a table
    notice.on_start(_event("colvault.kernels.encoding.zonemap"))
    assert started == [1]


def test_a_compile_still_running_when_the_timer_fires_is_said_once():
    notice, said = _notice()
    notice.on_start(_event("colvault.kernels.csv.tokens"))
    assert [t.seconds for t in _Timer.made] == [1.0] and _Timer.made[0].started
    _Timer.made[0].fire()
    assert said == ["said"]
    notice.on_end(_event("colvault.kernels.csv.tokens"))
    notice.on_start(_event("_colvault_kernel_abc"))  # said already: no second timer
    assert len(_Timer.made) == 1
    assert said == ["said"]


def test_a_compile_that_ended_before_the_timer_fired_is_not_said():
    notice, said = _notice()
    notice.on_start(_event("colvault.kernels.encoding.zonemap"))
    notice.on_end(_event("colvault.kernels.encoding.zonemap"))
    _Timer.made[0].fire()
    assert said == []
    notice.on_start(_event("colvault.kernels.query.aggcore"))  # the next compile counts anew
    assert len(_Timer.made) == 2
    _Timer.made[1].fire()
    assert said == ["said"]


def test_other_libraries_compiles_are_not_ours():
    notice, said = _notice()
    notice.on_start(_event("numba.np.arrayobj"))
    notice.on_start(_event("mylab.kernels"))
    assert _Timer.made == [] and said == []
    assert not compiling.ours(SimpleNamespace())


def test_watch_registers_one_listener():
    assert compiling.watch() is compiling.watch()
