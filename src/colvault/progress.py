"""Progress bars for long reads and imports, shared by ``engine`` and ``io``.

A long operation takes ``progress: bool | None``: ``True`` shows a bar, ``False`` never does,
and ``None`` (the default) shows one only where someone watches, when stderr is a terminal or
the code runs in a Jupyter kernel, and then only after about a second, so that short work
shows nothing. The environment variable ``COLVAULT_PROGRESS=0`` turns every bar off, even the
ones asked for with ``True``. A bar asked for with ``True`` is a ``tqdm.auto`` bar: a widget
in a notebook that has ipywidgets, text elsewhere. Automatic bars are text bars on stderr
(which notebooks show too): tqdm's widgets appear at once, whatever the delay, and without
ipywidgets tqdm.auto warns on every bar.
"""

from __future__ import annotations

import os
import sys
from typing import IO, Any

DELAY = 1.0
"""Seconds an automatic bar (``show=None``) waits before it appears."""

ENV = "COLVAULT_PROGRESS"

_OFF = {"0", "false", "no", "off"}


def in_jupyter() -> bool:
    """Whether this process is a Jupyter kernel (notebook, lab, VS Code, Colab), not a terminal
    IPython. IPython is not imported for the question: a process that has not imported it is
    no kernel."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()
    except Exception:  # an IPython too broken to say: no kernel as far as we can tell
        return False
    return shell is not None and getattr(shell, "kernel", None) is not None


def disabled_by_env() -> bool:
    """Whether ``COLVAULT_PROGRESS`` turns progress bars off (``0``, ``false``, ``no``, ``off``)."""
    return os.environ.get(ENV, "").strip().lower() in _OFF


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no method, or a closed stream
        return False


def _widgets() -> bool:
    """Whether notebook widgets can show a bar (ipywidgets installed, in a Jupyter kernel)."""
    if not in_jupyter():
        return False
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        return False
    return True


def enabled(show: bool | None) -> bool:
    """Whether a bar asked for with ``show`` is shown: never when ``COLVAULT_PROGRESS=0``;
    else ``show`` itself, or for ``None`` whether stderr is a terminal or we run in a Jupyter
    kernel."""
    if disabled_by_env():
        return False
    if show is None:
        return _isatty(sys.stderr) or in_jupyter()
    return bool(show)


def bar(
    total: float | None,
    unit: str,
    desc: str,
    show: bool | None = None,
    *,
    file: IO[str] | None = None,
    unit_scale: bool = True,
) -> Any:
    """A progress bar over ``total`` ``unit`` s, labelled ``desc`` (a notebook widget for
    ``show=True`` where ipywidgets is installed, else tqdm's text bar on stderr).

    ``show=True`` shows it at once, ``show=False`` never, and ``show=None`` when stderr is a
    terminal or we run in a Jupyter kernel, after :data:`DELAY` seconds (work that ends sooner
    shows nothing); ``COLVAULT_PROGRESS=0`` in the environment turns it off whatever ``show``
    says. A bar that is not shown is a disabled tqdm (``bar.disable`` is true), whose
    ``update`` and ``close`` cost next to nothing. ``file`` writes a text bar to that stream
    instead of stderr or a notebook widget. Use it as a context manager, or ``close()`` it.

    >>> with bar(3, "chunks", "read", show=False) as b:
    ...     b.update(3)
    >>> b.disable
    True
    """
    on = enabled(show)
    if file is None and show is True and on and _widgets():
        from tqdm.auto import tqdm
    else:
        from tqdm.std import tqdm
    delay = DELAY if show is None else 0.0
    return tqdm(
        total=total,
        unit=unit,
        unit_scale=unit_scale,
        desc=desc,
        disable=not on,
        delay=delay,
        file=file,
    )


__all__ = ["DELAY", "ENV", "bar", "disabled_by_env", "enabled", "in_jupyter"]
