"""colvault.progress: the shared progress bar and when it shows (issue 13 item 3)."""

from __future__ import annotations

import io
import sys
import types
import warnings
from typing import Any

import pytest

from colvault import progress


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(progress.ENV, raising=False)


def _run(show: bool | None, file: Any) -> None:
    with progress.bar(10, "rows", "read /t", show, file=file) as b:
        for _ in range(10):
            b.update(1)


def test_shown_bar_writes_to_the_file() -> None:
    out = io.StringIO()
    _run(True, out)
    text = out.getvalue()
    assert "read /t" in text
    assert "100%" in text
    assert "10.0/10.0" in text


def test_false_shows_nothing() -> None:
    out = io.StringIO()
    _run(False, out)
    assert out.getvalue() == ""
    assert progress.bar(1, "B", "x", False).disable


@pytest.mark.parametrize("value", ["0", "false", "off", "No"])
def test_environment_turns_every_bar_off(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(progress.ENV, value)
    out = io.StringIO()
    _run(True, out)  # even one asked for
    assert out.getvalue() == ""
    assert not progress.enabled(True)
    assert not progress.enabled(None)


def test_environment_other_values_change_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(progress.ENV, "1")
    assert progress.enabled(True)
    assert not progress.enabled(False)


def test_auto_hidden_without_a_terminal_or_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # not a tty
    monkeypatch.setattr(progress, "in_jupyter", lambda: False)
    assert not progress.enabled(None)
    assert progress.bar(5, "B", "x", None).disable


def test_auto_shown_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stderr", Tty())
    monkeypatch.setattr(progress, "in_jupyter", lambda: False)
    assert progress.enabled(None)


def test_auto_shown_in_a_fake_jupyter_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # a kernel's stderr is no tty
    monkeypatch.setattr(progress, "DELAY", 3600.0)  # "short work": never a stalled machine

    class Shell:
        kernel = object()

    fake = types.ModuleType("IPython")
    fake.get_ipython = lambda: Shell()  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "IPython", fake)
    assert progress.in_jupyter()
    assert progress.enabled(None)
    out = io.StringIO()
    b = progress.bar(4, "rows", "read /t", None, file=out)
    assert not b.disable
    assert b.delay == 3600.0  # short work shows nothing
    b.update(4)
    b.close()
    # ... and the delay: a bar closed within the second never drew itself
    assert out.getvalue() == ""


def test_jupyter_detector(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "IPython", raising=False)
    assert not progress.in_jupyter()
    fake = types.ModuleType("IPython")
    fake.get_ipython = lambda: None  # type: ignore[attr-defined]  # imported, no shell
    monkeypatch.setitem(sys.modules, "IPython", fake)
    assert not progress.in_jupyter()

    class TerminalShell:  # terminal IPython: no kernel
        pass

    fake.get_ipython = lambda: TerminalShell()  # type: ignore[attr-defined]
    assert not progress.in_jupyter()


def test_explicit_bar_has_no_delay() -> None:
    out = io.StringIO()
    b = progress.bar(4, "rows", "x", True, file=out)
    assert b.delay == 0
    b.close()
    assert "x" in out.getvalue()


def _fake_kernel(monkeypatch: pytest.MonkeyPatch, widgets: bool) -> None:
    class Shell:
        kernel = object()

    fake = types.ModuleType("IPython")
    fake.get_ipython = lambda: Shell()  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "IPython", fake)
    if widgets:
        monkeypatch.setitem(sys.modules, "ipywidgets", types.ModuleType("ipywidgets"))
    else:
        monkeypatch.setitem(sys.modules, "ipywidgets", None)  # import fails


@pytest.mark.parametrize("show", [None, True])
def test_no_widget_warning_in_a_notebook_without_ipywidgets(monkeypatch, show) -> None:
    """tqdm.auto warns "IProgress not found" on every bar where ipywidgets is missing."""
    _fake_kernel(monkeypatch, widgets=False)
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    from tqdm.std import tqdm

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        b = progress.bar(4, "rows", "read /t", show)
        assert type(b) is tqdm
        b.close()


def test_automatic_bars_in_a_notebook_are_delayed_text_bars(monkeypatch) -> None:
    _fake_kernel(monkeypatch, widgets=True)
    from tqdm.std import tqdm

    b = progress.bar(4, "rows", "read /t", None)
    assert type(b) is tqdm and b.delay == progress.DELAY
    b.close()
