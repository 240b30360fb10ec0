"""The object store Protocol every backend and wrapper implements.

Guarantees a backend gives (the contract suite in tests/contract checks each one):

- Names are ``/``-separated relative keys (``data/ab/abcd...``), checked by
  :func:`check_name` (a bad name is a :class:`PermanentBackendError`). A name is
  immutable: ``put`` of an existing name raises :class:`ObjectExists` and leaves the old
  object; after ``delete`` the name may be used again.
- ``put`` is atomic: readers see the whole object or nothing, never a prefix.
- Read-after-write: once ``put`` returns, ``get``/``stat``/``list`` see the object.
- ``get(name, offset, length)`` returns exactly ``length`` bytes; fewer is
  :class:`ShortRead`, never a silently short buffer. ``length=None`` reads to the end;
  ``offset`` past the end is a :class:`ShortRead`, ``offset`` at the end gives ``b""``.
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

from snowvault.engine import errors

RetentionMode = Literal["GOVERNANCE", "COMPLIANCE"]


@dataclass(frozen=True)
class ObjectInfo:
    name: str
    size: int


@dataclass(frozen=True)
class Retention:
    mode: RetentionMode
    until: datetime


def extend_retention(current: Retention | None, wanted: Retention) -> Retention:
    """The retention after asking for ``wanted``: the later date and the stronger mode.

    Retention never shortens and COMPLIANCE never turns back into GOVERNANCE:

    >>> from datetime import UTC, datetime
    >>> old = Retention("COMPLIANCE", datetime(2030, 1, 1, tzinfo=UTC))
    >>> new = extend_retention(old, Retention("GOVERNANCE", datetime(2031, 1, 1, tzinfo=UTC)))
    >>> new.mode, new.until.year
    ('COMPLIANCE', 2031)
    """
    if current is None:
        return wanted
    mode: RetentionMode = (
        "COMPLIANCE" if "COMPLIANCE" in (current.mode, wanted.mode) else "GOVERNANCE"
    )
    return Retention(mode, max(current.until, wanted.until))


def check_name(name: str) -> str:
    """Return ``name`` if it is a valid object name, else raise PermanentBackendError.

    Valid: non-empty ``/``-separated segments, none of them ``.`` or ``..``, no leading
    or trailing ``/``, no backslash or NUL.
    """
    segments = name.split("/")
    bad = (
        not name or "\\" in name or "\0" in name or any(seg in ("", ".", "..") for seg in segments)
    )
    if bad:
        raise errors.PermanentBackendError(detail=f"invalid object name {name!r}")
    return name


def check_range(offset: int, length: int | None) -> None:
    """Raise PermanentBackendError for a negative offset or length."""
    if offset < 0 or (length is not None and length < 0):
        raise errors.PermanentBackendError(detail=f"invalid range offset={offset} length={length}")


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

    def put(self, name: str, data: bytes | bytearray) -> None: ...

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
