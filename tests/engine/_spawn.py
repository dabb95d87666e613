"""Start helper scripts of the crash and concurrency tests as real child processes.

Children are started with ``subprocess`` (never ``fork``: see ARCHITECTURE.md, Numba's OpenMP
runtime), share the test's Numba cache directory so they load cached kernels instead of
compiling, and report through lines on stdout, read here by a thread with a timeout so a hung
child fails the test instead of hanging it.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
NUMBA_CACHE = os.environ.get("NUMBA_CACHE_DIR") or str(HERE.parents[1] / ".numba-cache")


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["NUMBA_CACHE_DIR"] = NUMBA_CACHE
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("COLVAULT_FSYNC", None)  # these tests are about durability: real fsyncs
    return env


class Child:
    """A helper script under ``tests/engine`` running as a child process."""

    def __init__(self, script: str, *args: Any, stdin: bool = False) -> None:
        self.name = script
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / script), *map(str, args)],
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=child_env(),
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._stderr: list[str] = []
        self._out = threading.Thread(target=self._pump_stdout, daemon=True)
        self._err = threading.Thread(target=self._pump_stderr, daemon=True)
        self._out.start()
        self._err.start()

    def _pump_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def _pump_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._stderr.append(line)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stderr(self) -> str:
        self._err.join(timeout=5)
        return "".join(self._stderr)

    def _died(self, what: str) -> AssertionError:
        try:
            rc = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            rc = None
        return AssertionError(f"{self.name} (pid {self.pid}, exit {rc}) {what}:\n{self.stderr()}")

    def line(self, timeout: float = 90.0) -> str:
        """The next line the child prints (fails the test if it exits or hangs instead)."""
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            self.kill()
            raise self._died(f"printed nothing for {timeout} s") from None
        if line is None:
            self._lines.put(None)
            raise self._died("exited before printing the expected line")
        return line

    def expect(self, text: str, timeout: float = 90.0) -> None:
        got = self.line(timeout)
        assert got == text, f"{self.name} printed {got!r}, expected {text!r}\n{self.stderr()}"

    def send(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()

    def kill(self) -> None:
        """``kill -9`` the child and reap it."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def rest(self) -> list[str]:
        """Every line not yet taken, once the child is gone."""
        self.proc.wait()
        self._out.join(timeout=10)
        out = []
        while True:
            line = self._lines.get(timeout=10)
            if line is None:
                self._lines.put(None)
                return out
            out.append(line)

    def finish(self, timeout: float = 120.0) -> list[str]:
        """Wait for a clean exit (status 0); return the lines not yet taken."""
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise self._died(f"did not finish within {timeout} s") from None
        if rc != 0:
            raise self._died("failed")
        return self.rest()

    def __enter__(self) -> Child:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()
        self._out.join(timeout=10)
        self._err.join(timeout=10)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass
