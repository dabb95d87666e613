"""The store-level ``LOCK`` file: shared by every open store, exclusive for ``mode="w"``.

``flock`` locks belong to an open file description, so two ``Store`` objects in one process
exclude each other exactly as two processes do.
"""

from __future__ import annotations

import fcntl
import os
import time

from ..errors import LockError

LOCK_NAME = "LOCK"


class StoreLock:
    def __init__(self, root: str) -> None:
        self.path = os.path.join(root, LOCK_NAME)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)

    def exclusive(self, why: str) -> None:
        """Take the lock exclusively now, or raise ``LockError`` (never waits)."""
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LockError(
                f"{os.path.dirname(self.path)} is open in another process (or store object); "
                f"close it before {why}"
            ) from None

    def shared(self, timeout: float = 60.0) -> None:
        """Take (or downgrade to) the shared lock, waiting while a ``w`` open or compaction runs."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise LockError(
                        f"{os.path.dirname(self.path)} is held exclusively by another process "
                        f"(recreating or compacting it) for more than {timeout:.0f} s"
                    ) from None
                time.sleep(0.01)

    def identity(self) -> tuple[int, int] | None:
        """(device, inode) of the lock file this object holds; None once closed."""
        if self.fd < 0:
            return None
        st = os.fstat(self.fd)
        return st.st_dev, st.st_ino

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
