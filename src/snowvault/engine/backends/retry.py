"""A Backend wrapper that retries transient errors with exponential backoff and jitter.

Only :class:`TransientBackendError` is retried; every other error fails fast. Two
operations need care because a failed attempt may still have taken effect:

- ``put``: if a retry finds the name taken (ObjectExists), the object is read back and
  the put counts as done when the bytes are identical.
- ``delete``: if a retry finds the name gone (ObjectNotFound), the delete counts as done.

``list`` is collected whole inside one attempt, so a retry never yields an object twice.
Time is injected: pass ``sleep`` (and ``rng`` for the jitter) in tests. Depends only on
base.py and the engine errors.

>>> from snowvault.engine.backends.memory import MemoryBackend
>>> store = RetryBackend(MemoryBackend(), attempts=3, sleep=lambda s: None)
>>> store.put("config", b"x"); store.get("config")
b'x'
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

from snowvault.core import errors as core_errors
from snowvault.engine import errors
from snowvault.engine.backends import base

T = TypeVar("T")
RetryHook = Callable[[str, int, errors.TransientBackendError, float], None]


class RetryBackend:
    """Wraps ``inner``; see the module docstring."""

    def __init__(
        self,
        inner: base.Backend,
        attempts: int = 5,
        base_delay: float = 0.2,
        *,
        max_delay: float = 20.0,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        on_retry: RetryHook | None = None,
    ) -> None:
        if attempts < 1:
            raise core_errors.InvalidInput(detail="retry attempts must be at least 1")
        self.inner = inner
        self._attempts = attempts
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._on_retry = on_retry

    @property
    def location(self) -> str:
        return self.inner.location

    @property
    def capabilities(self) -> base.Capabilities:
        return self._retry("capabilities", lambda: self.inner.capabilities)

    def put(self, name: str, data: bytes | bytearray) -> None:
        failed_before = False

        def attempt() -> None:
            nonlocal failed_before
            try:
                self.inner.put(name, data)
            except errors.ObjectExists:
                if not failed_before or not self._landed(name, data):
                    raise
            except errors.TransientBackendError:
                failed_before = True
                raise

        self._retry("put", attempt)

    def get(self, name: str, offset: int = 0, length: int | None = None) -> bytes:
        return self._retry("get", lambda: self.inner.get(name, offset, length))

    def stat(self, name: str) -> base.ObjectInfo:
        return self._retry("stat", lambda: self.inner.stat(name))

    def exists(self, name: str) -> bool:
        return self._retry("exists", lambda: self.inner.exists(name))

    def list(self, prefix: str = "") -> Iterator[base.ObjectInfo]:
        return iter(self._retry("list", lambda: list(self.inner.list(prefix))))

    def delete(self, name: str, *, bypass_governance: bool = False) -> None:
        failed_before = False

        def attempt() -> None:
            nonlocal failed_before
            try:
                self.inner.delete(name, bypass_governance=bypass_governance)
            except errors.ObjectNotFound:
                if not failed_before:
                    raise
            except errors.TransientBackendError:
                failed_before = True
                raise

        self._retry("delete", attempt)

    def set_retention(self, name: str, retention: base.Retention) -> None:
        self._retry("set_retention", lambda: self.inner.set_retention(name, retention))

    def get_retention(self, name: str) -> base.Retention | None:
        return self._retry("get_retention", lambda: self.inner.get_retention(name))

    def close(self) -> None:
        self.inner.close()

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1-based): half fixed, half jitter."""
        ceiling = min(self._max_delay, self._base_delay * 2.0 ** (retry - 1))
        return ceiling / 2 + self._rng.uniform(0, ceiling / 2)

    def _retry(self, op: str, call: Callable[[], T]) -> T:
        for attempt in range(1, self._attempts + 1):
            try:
                return call()
            except errors.TransientBackendError as exc:
                if attempt == self._attempts:
                    raise
                wait = self.delay(attempt)
                if self._on_retry is not None:
                    self._on_retry(op, attempt, exc, wait)
                self._sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    def _landed(self, name: str, data: bytes | bytearray) -> bool:
        """Whether ``name`` holds exactly ``data`` (an earlier attempt landed after all)."""
        if self._retry("stat", lambda: self.inner.stat(name)).size != len(data):
            return False
        return self._retry("get", lambda: self.inner.get(name)) == data
