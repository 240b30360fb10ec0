"""An object store in a dict, for tests and throwaway repositories.

Thread-safe; objects are immutable ``bytes`` so ``get`` of a whole object returns the
stored object without a copy. Retention is not supported (``capabilities.retention`` is
False); ``snowvault.testing.LockingMemoryBackend`` adds it. Depends only on base.py and
the engine errors.

>>> store = MemoryBackend()
>>> store.put("data/ab/abcd", b"hello")
>>> store.get("data/ab/abcd", 1, 3)
b'ell'
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

from snowvault.engine import errors
from snowvault.engine.backends import base


def slice_object(name: str, data: bytes, offset: int, length: int | None) -> bytes:
    """Return ``length`` bytes of ``data`` from ``offset``, or raise ShortRead."""
    base.check_range(offset, length)
    size = len(data)
    if offset == 0 and length in (None, size):
        return data
    if offset > size:
        raise past_end(name, offset, size, length)
    end = size if length is None else offset + length
    if end > size:
        raise errors.ShortRead(name=name, wanted=length, got=size - offset)
    return data[offset:end]


def past_end(name: str, offset: int, size: int, length: int | None) -> errors.ShortRead:
    """The ShortRead for a read that starts past the end of an object."""
    message = f"short read of {name}: offset {offset} is past the end ({size} bytes)"
    return errors.ShortRead(message, name=name, wanted=length, got=0)


class MemoryBackend:
    """A thread-safe dict of name -> bytes."""

    def __init__(self, label: str = "") -> None:
        self._objects: dict[str, bytes] = {}
        self._lock = threading.Lock()
        self._label = label

    @property
    def location(self) -> str:
        return f"memory://{self._label}"

    @property
    def capabilities(self) -> base.Capabilities:
        return base.Capabilities(retention=False)

    def put(self, name: str, data: bytes | bytearray) -> None:
        base.check_name(name)
        blob = bytes(data)  # no copy for bytes; freezes a bytearray or memoryview
        with self._lock:
            if name in self._objects:
                raise errors.ObjectExists(name=name)
            self._objects[name] = blob

    def get(self, name: str, offset: int = 0, length: int | None = None) -> bytes:
        return slice_object(name, self._lookup(name), offset, length)

    def stat(self, name: str) -> base.ObjectInfo:
        return base.ObjectInfo(name=name, size=len(self._lookup(name)))

    def exists(self, name: str) -> bool:
        base.check_name(name)
        with self._lock:
            return name in self._objects

    def list(self, prefix: str = "") -> Iterator[base.ObjectInfo]:
        with self._lock:
            found = [
                base.ObjectInfo(name=name, size=len(data))
                for name, data in self._objects.items()
                if name.startswith(prefix)
            ]
        return iter(found)

    def delete(self, name: str, *, bypass_governance: bool = False) -> None:
        base.check_name(name)
        with self._lock:
            if self._objects.pop(name, None) is None:
                raise errors.ObjectNotFound(name=name)

    def set_retention(self, name: str, retention: base.Retention) -> None:
        """A no-op: this store does not enforce retention."""
        self._lookup(name)

    def get_retention(self, name: str) -> base.Retention | None:
        self._lookup(name)
        return None

    def close(self) -> None:
        """Nothing to release; the objects stay readable."""

    def _lookup(self, name: str) -> bytes:
        base.check_name(name)
        with self._lock:
            data = self._objects.get(name)
        if data is None:
            raise errors.ObjectNotFound(name=name)
        return data
