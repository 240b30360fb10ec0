"""A Backend wrapper that refuses every change: for check, restore and browsing.

Reads pass through; ``put``, ``delete`` and ``set_retention`` raise
:class:`PermanentBackendError` without touching the inner store. Depends only on base.py
and the engine errors.

>>> from snowvault.engine.backends.memory import MemoryBackend
>>> ReadOnlyBackend(MemoryBackend()).put("x", b"")
Traceback (most recent call last):
...
snowvault.engine.errors.PermanentBackendError: storage error: read-only store: put x
"""

from __future__ import annotations

from collections.abc import Iterator

from snowvault.engine import errors
from snowvault.engine.backends import base


class ReadOnlyBackend:
    """Wraps ``inner``; every write fails fast."""

    def __init__(self, inner: base.Backend) -> None:
        self.inner = inner

    @property
    def location(self) -> str:
        return self.inner.location

    @property
    def capabilities(self) -> base.Capabilities:
        return self.inner.capabilities

    def put(self, name: str, data: bytes | bytearray) -> None:
        raise _refused("put", name)

    def get(self, name: str, offset: int = 0, length: int | None = None) -> bytes:
        return self.inner.get(name, offset, length)

    def stat(self, name: str) -> base.ObjectInfo:
        return self.inner.stat(name)

    def exists(self, name: str) -> bool:
        return self.inner.exists(name)

    def list(self, prefix: str = "") -> Iterator[base.ObjectInfo]:
        return self.inner.list(prefix)

    def delete(self, name: str, *, bypass_governance: bool = False) -> None:
        raise _refused("delete", name)

    def set_retention(self, name: str, retention: base.Retention) -> None:
        raise _refused("set_retention", name)

    def get_retention(self, name: str) -> base.Retention | None:
        return self.inner.get_retention(name)

    def close(self) -> None:
        self.inner.close()


def _refused(op: str, name: str) -> errors.PermanentBackendError:
    return errors.PermanentBackendError(detail=f"read-only store: {op} {name}")
