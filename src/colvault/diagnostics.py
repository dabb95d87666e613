"""Measuring what colvault promises about memory: the peak anonymous resident memory of a
process while it works (Linux).

``RssAnon`` counts what the process allocates; pages of mapped segment files are file-backed and
not in it, so it is the figure bounded-memory claims are about. The tests and ``compare`` read it
through :class:`PeakRss`, a thread that samples it every few milliseconds.
"""

from __future__ import annotations

import threading
import time

#: Seconds between samples.
INTERVAL = 0.002


def rss_anon() -> int:
    """Anonymous resident memory of this process, in bytes (Linux ``/proc/self/status``)."""
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no RssAnon in /proc/self/status")


class PeakRss(threading.Thread):
    """The highest ``RssAnon`` seen between ``start()`` and ``stop()`` (or within ``with``).

    >>> with PeakRss() as peak:
    ...     block = bytearray(64 << 20)  # freshly mapped and zero-filled: 64 MiB resident
    >>> peak.peak - peak.first >= 60 << 20  # (less anything freed meanwhile)
    True
    >>> del block
    """

    def __init__(self, interval: float = INTERVAL) -> None:
        super().__init__(daemon=True, name="colvault-peak-rss")
        self.interval = interval
        self.peak = self.first = rss_anon()
        self.samples = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.peak = max(self.peak, rss_anon())
            self.samples += 1
            time.sleep(self.interval)

    def stop(self) -> int:
        """Stop sampling; the peak in bytes."""
        self._stop_event.set()
        self.join()
        self.peak = max(self.peak, rss_anon())
        return self.peak

    def __enter__(self) -> PeakRss:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
