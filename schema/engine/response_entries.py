"""A response cache entry's look-up and freshness, and the entries a process keeps itself
(``schema.engine.response_cache``: what positions are and where they come from)."""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass


@dataclass(slots=True)
class Lookup:
    """One request's look-up, carried to its fill: its ``key``, its ``document``'s hash, the
    positions known when it was looked up (``known``, at least ``floor`` for any table),
    whether they came from Redis (``shared``: the fill goes there), and the tables its
    response reads, set once its operation is known to be a cacheable query."""

    key: str
    document: str
    known: dict[str, int]
    floor: int
    shared: bool
    tables: frozenset[str] | None = None

    def recorded(self) -> dict[str, int]:
        """The position of each table read, as known when the execution began."""
        return {t: max(self.known.get(t, 0), self.floor) for t in self.tables or ()}


def fresh(recorded: dict[str, int], known: dict[str, int], floor: int) -> bool:
    """Whether an entry read after the positions ``recorded`` is fresh against the
    positions ``known`` (at least ``floor`` for every table)."""
    return all(p >= known.get(t, floor) and p >= floor for t, p in recorded.items())


class ProcessEntries:
    """This process's entries: an LRU bounded by ``max_bytes`` of bodies, each kept ``ttl``
    seconds at most."""

    def __init__(self, max_bytes: int, ttl: float) -> None:
        self.max_bytes, self.ttl, self.size = max_bytes, ttl, 0
        self._entries: OrderedDict[str, tuple[dict[str, int], bytes, float]] = OrderedDict()

    def get(self, key: str) -> tuple[dict[str, int], bytes] | None:
        """The entry's recorded positions and body, or ``None`` (none, or expired)."""
        found = self._entries.get(key)
        if found is None:
            return None
        if found[2] < time.monotonic():
            self.drop(key)
            return None
        self._entries.move_to_end(key)
        return found[0], found[1]

    def keep(self, key: str, recorded: dict[str, int], body: bytes) -> None:
        self.drop(key)
        self._entries[key] = (recorded, body, time.monotonic() + self.ttl)
        self.size += len(body)
        while self.size > self.max_bytes:
            self.drop(next(iter(self._entries)))

    def drop(self, key: str) -> None:
        found = self._entries.pop(key, None)
        if found is not None:
            self.size -= len(found[1])
