"""A Backend over two stores, warm and cold: new objects go to warm, reads find an object
wherever it is, and :meth:`TieredBackend.move_to_cold` moves one object across.

This is how a vault's cold storage works (docs/design/copies.md, "Cold storage"): the
repository stays one repository (one index, one set of manifests, in warm), and the
packs that only cold recovery points need live in the region's cold location. Every
reader (restore, browse, check, prune, copy) goes through this wrapper and never needs
to know which tier holds a pack.

    store = TieredBackend(open_backend(warm_url), open_backend(cold_url))
    store.move_to_cold("data/ab/abcd...")      # False: it stays (retention, or not warm)

Guarantees as base.py states them, over the union of the two stores: a name is in at
most one tier once a move has finished (a move puts to cold, then deletes warm; a
reader between the two finds the warm copy); ``put`` of a name either tier holds raises
ObjectExists; ``list`` yields each name once; ``delete`` removes it from both.

An object under retention (Vault Lock on a store with Object Lock) is never moved: it
could not be deleted from warm, and its protection would not follow it. Depends only
on base.py and the engine errors.

>>> from snowvault.engine.backends.memory import MemoryBackend
>>> warm, cold = MemoryBackend(), MemoryBackend()
>>> store = TieredBackend(warm, cold)
>>> store.put("data/00/x", b"pack")
>>> store.move_to_cold("data/00/x"), warm.exists("data/00/x"), store.get("data/00/x")
(True, False, b'pack')
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from snowvault.engine import errors
from snowvault.engine.backends import base


class TieredBackend:
    """``warm`` takes every write; ``cold`` holds what was moved to it."""

    def __init__(self, warm: base.Backend, cold: base.Backend) -> None:
        self.warm, self.cold = warm, cold

    @property
    def location(self) -> str:
        return self.warm.location

    @property
    def capabilities(self) -> base.Capabilities:
        return self.warm.capabilities

    def put(self, name: str, data: bytes | bytearray) -> None:
        if self.cold.exists(name):
            raise errors.ObjectExists(name=name)
        self.warm.put(name, data)
        if self.cold.exists(name):  # a racing writer's copy reached cold meanwhile: it won
            with contextlib.suppress(errors.ObjectNotFound):
                self.warm.delete(name)
            raise errors.ObjectExists(name=name)

    def get(self, name: str, offset: int = 0, length: int | None = None) -> bytes:
        try:
            return self.warm.get(name, offset, length)
        except errors.ObjectNotFound:
            return self.cold.get(name, offset, length)

    def stat(self, name: str) -> base.ObjectInfo:
        try:
            return self.warm.stat(name)
        except errors.ObjectNotFound:
            return self.cold.stat(name)

    def exists(self, name: str) -> bool:
        return self.warm.exists(name) or self.cold.exists(name)

    def list(self, prefix: str = "") -> Iterator[base.ObjectInfo]:
        seen = set()
        for info in self.warm.list(prefix):
            seen.add(info.name)
            yield info
        for info in self.cold.list(prefix):
            if info.name not in seen:
                yield info

    def delete(self, name: str, *, bypass_governance: bool = False) -> None:
        found = False
        for store in (self.warm, self.cold):
            try:
                store.delete(name, bypass_governance=bypass_governance)
                found = True
            except errors.ObjectNotFound:
                continue
        if not found:
            raise errors.ObjectNotFound(name=name)

    def set_retention(self, name: str, retention: base.Retention) -> None:
        store = self.warm if self.warm.exists(name) else self.cold
        store.set_retention(name, retention)

    def get_retention(self, name: str) -> base.Retention | None:
        store = self.warm if self.warm.exists(name) else self.cold
        return store.get_retention(name)

    def is_cold(self, name: str) -> bool:
        return not self.warm.exists(name) and self.cold.exists(name)

    def move_to_cold(self, name: str) -> bool:
        """Move ``name`` from warm to cold: put (the same bytes: names are content
        hashes, so one a killed move left in cold is fine), then delete warm. False: it
        is not in warm, or it is under retention and stays."""
        try:
            if self.warm.get_retention(name) is not None:
                return False
            data = self.warm.get(name)
        except errors.ObjectNotFound:
            return False
        with contextlib.suppress(errors.ObjectExists):
            self.cold.put(name, data)
        try:
            self.warm.delete(name)
        except errors.ObjectLocked:
            return False
        return True

    def close(self) -> None:
        try:
            self.warm.close()
        finally:
            self.cold.close()
