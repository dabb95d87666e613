"""Bounded caches of parsed and compiled conditions: at most so many, the oldest dropped."""

from __future__ import annotations

import threading
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Kept(Generic[K, V]):
    """At most ``most`` entries, the oldest dropped first. Lookups take no lock; an insert
    takes one, since another thread's insert between finding the oldest entry and dropping
    it would raise ("dictionary changed size during iteration")."""

    def __init__(self, most: int) -> None:
        self.most = most
        self._items: dict[K, V] = {}
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        return self._items.get(key)

    def put(self, key: K, value: V) -> V:
        """Keep ``value`` under ``key``; returns it."""
        with self._lock:
            if len(self._items) >= self.most:
                self._items.pop(next(iter(self._items)), None)  # the oldest
            self._items[key] = value
        return value

    def __len__(self) -> int:
        return len(self._items)
