"""The object store Protocol every backend and wrapper implements.

Guarantees a backend gives (the contract suite in tests/contract checks each one):

- Names are ``/``-separated relative keys (``data/ab/abcd...``). A name is immutable:
  ``put`` of an existing name raises :class:`ObjectExists` and leaves the old object.
- ``put`` is atomic: readers see the whole object or nothing, never a prefix.
- Read-after-write: once ``put`` returns, ``get``/``stat``/``list`` see the object.
- ``get(name, offset, length)`` returns exactly ``length`` bytes; fewer is
  :class:`ShortRead`, never a silently short buffer. ``length=None`` reads to the end.
- ``list(prefix)`` yields every object whose name starts with ``prefix``, in any order.
- ``delete`` of a missing name raises :class:`ObjectNotFound`; of an object under
  retention raises :class:`ObjectLocked` and leaves it.
- Errors: :class:`TransientBackendError` may succeed on retry (the retry wrapper retries
  only these); every other :class:`BackendError` is permanent and fails fast.
- Retention (WORM) is optional: ``capabilities.retention`` says whether
  ``set_retention`` is enforced by the store itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol, runtime_checkable

RetentionMode = Literal["GOVERNANCE", "COMPLIANCE"]


@dataclass(frozen=True)
class ObjectInfo:
    name: str
    size: int


@dataclass(frozen=True)
class Retention:
    mode: RetentionMode
    until: datetime


@dataclass(frozen=True)
class Capabilities:
    retention: bool = False
    """The store itself refuses deletes before a retain-until date (e.g. S3 Object Lock)."""


@runtime_checkable
class Backend(Protocol):
    """A dumb object store. See the module docstring for the guarantees."""

    @property
    def location(self) -> str:
        """A URL naming where the objects live (for messages, never for secrets)."""
        ...

    @property
    def capabilities(self) -> Capabilities: ...

    def put(self, name: str, data: bytes) -> None: ...

    def get(self, name: str, offset: int = 0, length: int | None = None) -> bytes: ...

    def stat(self, name: str) -> ObjectInfo: ...

    def exists(self, name: str) -> bool: ...

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]: ...

    def delete(self, name: str, *, bypass_governance: bool = False) -> None: ...

    def set_retention(self, name: str, retention: Retention) -> None:
        """Extend (never shorten) the object's retention; a no-op where unsupported."""
        ...

    def get_retention(self, name: str) -> Retention | None: ...

    def close(self) -> None: ...
