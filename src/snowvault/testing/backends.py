"""Store fakes for tests: fault injection and retention enforcement.

``FaultyBackend`` wraps any Backend and fails chosen calls::

    store = FaultyBackend(MemoryBackend())
    store.fail("put", nth=3, error=TransientBackendError(detail="boom"))
    store.fail("put", nth=5, after=True)   # the 5th put lands, then reports failure
    store.fail("get", every=2)             # every 2nd get fails (2nd, 4th, ...)

``LockingMemoryBackend`` is a memory store that enforces retention like S3 Object Lock
(GOVERNANCE refuses deletes unless bypassed, COMPLIANCE always refuses) until the
retain-until date on an injected clock. Both pass the backend contract suite.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

from snowvault.core.clock import Clock
from snowvault.engine import errors
from snowvault.engine.backends import base
from snowvault.engine.backends.memory import MemoryBackend

T = TypeVar("T")
OPERATIONS = frozenset(
    {"put", "get", "stat", "exists", "list", "delete", "set_retention", "get_retention"}
)


@dataclass
class FaultRule:
    """Fail call number ``nth`` of ``op`` (and ``times - 1`` more), or every ``every``-th."""

    op: str
    error: errors.BackendError
    nth: int = 1
    times: int = 1
    every: int | None = None
    after: bool = False
    fired: int = field(default=0)

    def matches(self, call: int) -> bool:
        if self.every is not None:
            return call >= self.nth and (call - self.nth) % self.every == 0
        return self.nth <= call < self.nth + self.times


class FaultyBackend:
    """Wraps ``inner`` and raises the configured errors on matching calls."""

    def __init__(self, inner: base.Backend) -> None:
        self.inner = inner
        self.rules: list[FaultRule] = []
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()

    def fail(
        self,
        op: str,
        *,
        nth: int | None = None,
        times: int = 1,
        every: int | None = None,
        error: errors.BackendError | None = None,
        after: bool = False,
    ) -> FaultyBackend:
        """Add a rule; ``after=True`` performs the call first, then raises. Chainable."""
        if op not in OPERATIONS:
            raise ValueError(f"unknown operation {op!r}")
        rule = FaultRule(
            op=op,
            error=error or errors.TransientBackendError(detail=f"injected fault in {op}"),
            nth=nth if nth is not None else (every or 1),
            times=times,
            every=every,
            after=after,
        )
        with self._lock:
            self.rules.append(rule)
        return self

    @property
    def location(self) -> str:
        return self.inner.location

    @property
    def capabilities(self) -> base.Capabilities:
        return self.inner.capabilities

    def put(self, name: str, data: bytes | bytearray) -> None:
        self._call("put", lambda: self.inner.put(name, data))

    def get(self, name: str, offset: int = 0, length: int | None = None) -> bytes:
        return self._call("get", lambda: self.inner.get(name, offset, length))

    def stat(self, name: str) -> base.ObjectInfo:
        return self._call("stat", lambda: self.inner.stat(name))

    def exists(self, name: str) -> bool:
        return self._call("exists", lambda: self.inner.exists(name))

    def list(self, prefix: str = "") -> Iterator[base.ObjectInfo]:
        return iter(self._call("list", lambda: list(self.inner.list(prefix))))

    def delete(self, name: str, *, bypass_governance: bool = False) -> None:
        self._call("delete", lambda: self.inner.delete(name, bypass_governance=bypass_governance))

    def set_retention(self, name: str, retention: base.Retention) -> None:
        self._call("set_retention", lambda: self.inner.set_retention(name, retention))

    def get_retention(self, name: str) -> base.Retention | None:
        return self._call("get_retention", lambda: self.inner.get_retention(name))

    def close(self) -> None:
        self.inner.close()

    def _call(self, op: str, call: Callable[[], T]) -> T:
        rule = self._match(op)
        if rule is None:
            return call()
        if rule.after:
            call()
        raise rule.error

    def _match(self, op: str) -> FaultRule | None:
        with self._lock:
            self.calls[op] += 1
            number = self.calls[op]
            for rule in self.rules:
                if rule.op == op and rule.matches(number):
                    rule.fired += 1
                    return rule
        return None


class LockingMemoryBackend:
    """A memory store that enforces GOVERNANCE/COMPLIANCE retention on ``clock``."""

    def __init__(self, clock: Clock, label: str = "locking") -> None:
        self._store = MemoryBackend(label)
        self._clock = clock
        self._retention: dict[str, base.Retention] = {}
        self._lock = threading.Lock()

    @property
    def location(self) -> str:
        return self._store.location

    @property
    def capabilities(self) -> base.Capabilities:
        return base.Capabilities(retention=True)

    def put(self, name: str, data: bytes | bytearray) -> None:
        self._store.put(name, data)

    def get(self, name: str, offset: int = 0, length: int | None = None) -> bytes:
        return self._store.get(name, offset, length)

    def stat(self, name: str) -> base.ObjectInfo:
        return self._store.stat(name)

    def exists(self, name: str) -> bool:
        return self._store.exists(name)

    def list(self, prefix: str = "") -> Iterator[base.ObjectInfo]:
        return self._store.list(prefix)

    def delete(self, name: str, *, bypass_governance: bool = False) -> None:
        with self._lock:
            self._store.stat(name)
            if self._locked(name, bypass_governance):
                raise errors.ObjectLocked(name=name)
            self._store.delete(name)
            self._retention.pop(name, None)

    def set_retention(self, name: str, retention: base.Retention) -> None:
        with self._lock:
            self._store.stat(name)
            current = self._retention.get(name)
            self._retention[name] = base.extend_retention(current, retention)

    def get_retention(self, name: str) -> base.Retention | None:
        with self._lock:
            self._store.stat(name)
            return self._retention.get(name)

    def close(self) -> None:
        self._store.close()

    def _locked(self, name: str, bypass_governance: bool) -> bool:
        retention = self._retention.get(name)
        if retention is None or self._clock.now() >= retention.until:
            return False
        return retention.mode == "COMPLIANCE" or not bypass_governance
