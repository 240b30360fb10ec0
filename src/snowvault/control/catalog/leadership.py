"""Roles one server of a fleet holds at a time, for as long as its process lives.

Most of the service needs no leader: the scheduler's run ledger and the job leases
decide in the catalog who does what (docs/design/scheduler.md). A few things are
long-lived and must run on exactly one server: a continuous point's WAL receiver (the
replication slot admits one reader), the notification delivery loop (two loops would
post each message twice). Each is a *role*, named by a string::

    roles = Leadership(engine, lock_dir)      # one per server process
    if roles.hold("continuous:<resource> <vault>"):   # True: ours (taken now or before)
        ...                                   # serve it
    roles.check()                             # False: the roles were lost (reconnect)
    roles.release(name); roles.close()

PostgreSQL: a role is a session advisory lock (``pg_try_advisory_lock``) taken on one
connection this object keeps open. PostgreSQL frees a session's locks when its
connection ends, so a server that dies (killed, crashed, its host gone) gives up its
roles as soon as PostgreSQL sees the connection close — at once for a killed process,
within the TCP keepalive for a vanished host — and another server takes them at its
next pass. Nothing here stores a lease of its own: the lock IS the lease.

SQLite (one host): a role is an ``flock`` on a file in ``lock_dir`` (released with the
process, as above).

:meth:`check` asks the connection for a row; when it fails (PostgreSQL restarted, the
network dropped it), every role is gone already and the caller must stop what they
guarded before holding them again. Between PostgreSQL dropping the connection and that
check another server may take a role: callers keep each guarded action short, and the
guarded resources themselves refuse a second holder (a replication slot serves one
receiver).

:func:`migration_lock` serialises catalog migrations of servers starting together.

Must not depend on anything above ``snowvault.core``.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from snowvault.control.catalog.db import is_sqlite

log = logging.getLogger("snowvault.catalog.leadership")

NAMESPACE = 0x5F0E_0001
"""The advisory-lock class id of snowvault's roles (the first int of the two-int key)."""
MIGRATION_ROLE = "catalog-migration"


def _key(name: str) -> int:
    """The role's 32-bit lock id: two names sharing one only means one server holds
    both (never that two servers hold one)."""
    return int.from_bytes(zlib.crc32(name.encode()).to_bytes(4, "big"), "big", signed=True)


class Leadership:
    """The roles this process holds (module doc); thread-safe."""

    def __init__(self, engine: Engine, lock_dir: str | os.PathLike[str]) -> None:
        self._engine = engine
        self._dir = Path(lock_dir)
        self._lock = threading.Lock()
        self._conn: Connection | None = None
        self._held: dict[str, int | None] = {}  # name -> flock fd (SQLite) or None

    def hold(self, name: str) -> bool:
        """Take role ``name`` unless another server holds it; True if this process holds
        it now (taken now or earlier)."""
        with self._lock:
            if name in self._held:
                return True
            try:
                taken, fd = self._take(name)
            except (DBAPIError, OSError) as exc:
                log.warning("role %s not taken: %s", name, str(exc).splitlines()[0])
                self._drop_connection()
                return False
            if taken:
                self._held[name] = fd
            return taken

    def held(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._held)

    def release(self, name: str) -> None:
        with self._lock:
            if name not in self._held:
                return
            fd = self._held.pop(name)
            if fd is not None:
                os.close(fd)  # the flock goes with the descriptor
            elif self._conn is not None:
                try:
                    self._conn.execute(
                        sa.text("SELECT pg_advisory_unlock(:ns, :key)"),
                        {"ns": NAMESPACE, "key": _key(name)},
                    )
                except DBAPIError:
                    self._drop_connection()

    def check(self) -> bool:
        """True while every role held is still held; False (and none held) once the
        PostgreSQL connection carrying them broke."""
        with self._lock:
            if self._conn is None or is_sqlite(self._engine):
                return True
            try:
                self._conn.execute(sa.text("SELECT 1"))
                return True
            except DBAPIError:
                log.warning("the connection holding roles %s broke", sorted(self._held))
                self._drop_connection()
                return False

    def close(self) -> None:
        with self._lock:
            for fd in self._held.values():
                if fd is not None:
                    os.close(fd)
            self._held.clear()
            if self._conn is not None:
                # Unlocked before the connection goes, so the roles are free when close()
                # returns: a closed socket frees them only once PostgreSQL's backend has
                # seen it and exited, which another server could beat (seen on a loaded
                # CI machine). A pooled connection would keep its session's locks: close
                # it for real too (a killed process relies on that alone).
                with contextlib.suppress(Exception):  # a broken connection holds none
                    self._conn.execute(sa.text("SELECT pg_advisory_unlock_all()"))
                self._conn.invalidate()
                self._conn.close()
                self._conn = None

    def _take(self, name: str) -> tuple[bool, int | None]:
        if is_sqlite(self._engine):
            return _flock(self._dir, name, blocking=False)
        if self._conn is None:
            self._conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        taken = self._conn.execute(
            sa.text("SELECT pg_try_advisory_lock(:ns, :key)"),
            {"ns": NAMESPACE, "key": _key(name)},
        ).scalar()
        return bool(taken), None

    def _drop_connection(self) -> None:
        """The connection is gone or suspect: PostgreSQL has freed (or will free) its
        locks, so this process holds no PostgreSQL role any more."""
        conn, self._conn = self._conn, None
        self._held = {k: v for k, v in self._held.items() if v is not None}
        if conn is not None:
            try:
                conn.invalidate()
                conn.close()
            except Exception:  # already broken; nothing more to free
                pass


def _flock(directory: Path, name: str, *, blocking: bool) -> tuple[bool, int | None]:
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = directory / f"{zlib.crc32(name.encode()):08x}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    except BlockingIOError:
        os.close(fd)
        return False, None
    return True, fd


@contextmanager
def migration_lock(engine: Engine) -> Iterator[None]:
    """Hold the migration role while the block runs (waiting for another server's
    migration to end first): servers of a fleet started together upgrade the catalog
    one after the other. SQLite: nothing (its writers are serialised already)."""
    if is_sqlite(engine):
        yield
        return
    with engine.connect() as raw:
        conn: Any = raw.execution_options(isolation_level="AUTOCOMMIT")
        params = {"ns": NAMESPACE, "key": _key(MIGRATION_ROLE)}
        conn.execute(sa.text("SELECT pg_advisory_lock(:ns, :key)"), params)
        try:
            yield
        finally:
            conn.execute(sa.text("SELECT pg_advisory_unlock(:ns, :key)"), params)
