"""Short critical sections that hold across every server of a fleet, by name: one
AgentPutManifest of a job at a time, whichever servers its calls land on
(services/agents.py).

    with fleet_locks.hold(engine, "agent-manifest|" + job_id, wait_seconds=120) as held:
        if not held:
            ...  # another call (this server or another) still holds it: ask again later

In this process a lock per name (threads of one server); on PostgreSQL also a
transaction-scoped advisory lock (``pg_advisory_xact_lock``) on a connection opened for
the block (outside the engine's pool, so sections never starve it), waited for at
most ``wait_seconds`` (``lock_timeout``). PostgreSQL frees it when that transaction
ends, and when the connection dies with a killed server, so no holder outlives its
process. SQLite: the process lock alone (a SQLite catalog has one server; ``init
--join`` refuses one).

Two names sharing a 32-bit key only make their holders wait for each other, never both
hold one name. The key class differs from leadership's roles (a role held for a
server's life never blocks a job's section).

Must not depend on anything above ``snowvault.core``.
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from snowvault.control.catalog.db import create_engine, is_sqlite

LOCK_NOT_AVAILABLE = "55P03"
NAMESPACE = 0x5F0E_0002
"""The advisory-lock class id of these sections (leadership's roles use 0x5F0E_0001)."""

_LOCAL: dict[str, tuple[threading.Lock, int]] = {}
"""name -> (its lock, how many threads hold or wait for it); dropped at zero."""
_LOCAL_GUARD = threading.Lock()
_UNPOOLED: dict[str, Engine] = {}
"""Per catalog URL, an engine without a pool: a section holds its connection for as
long as it runs, and many at once (a fleet of agents ending their jobs together) must
not take the connections every short transaction of the server needs."""


def _key(name: str) -> int:
    return int.from_bytes(zlib.crc32(name.encode()).to_bytes(4, "big"), "big", signed=True)


@contextmanager
def _local(name: str, wait_seconds: float) -> Iterator[bool]:
    with _LOCAL_GUARD:
        lock, users = _LOCAL.get(name, (threading.Lock(), 0))
        _LOCAL[name] = (lock, users + 1)
    taken = lock.acquire(timeout=max(wait_seconds, 0.0))
    try:
        yield taken
    finally:
        if taken:
            lock.release()
        with _LOCAL_GUARD:
            lock, users = _LOCAL[name]
            if users <= 1:
                del _LOCAL[name]
            else:
                _LOCAL[name] = (lock, users - 1)


def _unpooled(engine: Engine) -> Engine:
    url = engine.url.render_as_string(hide_password=False)
    with _LOCAL_GUARD:
        found = _UNPOOLED.get(url)
        if found is None:
            found = _UNPOOLED[url] = create_engine(url, poolclass=NullPool)
        return found


@contextmanager
def hold(engine: Engine, name: str, *, wait_seconds: float) -> Iterator[bool]:
    """Hold ``name`` for the block, across the fleet; yields False (and holds nothing)
    when another holder kept it past ``wait_seconds`` (in this process, then again on
    PostgreSQL)."""
    with _local(name, wait_seconds) as taken:
        if not taken:
            yield False
            return
        if is_sqlite(engine):
            yield True
            return
        with _unpooled(engine).connect() as conn:  # closed for real at the end
            transaction = conn.begin()
            millis = max(int(wait_seconds * 1000), 1)
            try:
                conn.execute(sa.text(f"SET LOCAL lock_timeout = {millis}"))
                try:
                    conn.execute(
                        sa.text("SELECT pg_advisory_xact_lock(:ns, :key)"),
                        {"ns": NAMESPACE, "key": _key(name)},
                    )
                    got = True
                except DBAPIError as exc:
                    if getattr(exc.orig, "sqlstate", None) != LOCK_NOT_AVAILABLE:
                        raise
                    got = False
                yield got
            finally:
                transaction.rollback()  # it wrote nothing; its end frees the lock
