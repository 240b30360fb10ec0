"""Repository locks: backups hold shared locks, prune holds an exclusive one.

A lock is an immutable object ``locks/<random id>`` holding JSON
``{"exclusive": bool, "time": ISO-8601 UTC, "host": ..., "pid": ...}``. Holders refresh
by writing a new lock and deleting the old one (names never change content). A lock
whose time is older than ``STALE_AFTER`` is ignored (its holder died), and so is a lock
written on this host by a process that no longer exists (killed: no need to wait 30
minutes). A lock from another host is only judged by its age. A pid reused by another
process keeps the lock live until it ages out: the safe side.

Protocol: write your lock, then list the others. A shared holder backs off when it sees
a live exclusive lock; an exclusive holder backs off when it sees any other live lock.
Two contenders that start together may both back off — never both proceed. Lock
through :func:`locked_repository`: it reads the index again once the lock is held, so
what a holder knows of the packs is never older than the lock.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import socket
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from snowvault.core.clock import Clock
from snowvault.core.errors import Conflict
from snowvault.engine import errors
from snowvault.engine.backends import local, tiered
from snowvault.engine.backends.base import Backend
from snowvault.engine.crypto import random_bytes

if TYPE_CHECKING:
    from snowvault.engine.repository import Repository

log = logging.getLogger("snowvault.engine.locks")

STALE_AFTER = timedelta(minutes=30)
REFRESH_EVERY = timedelta(minutes=5)
RETRY_EVERY_SECONDS = 0.5
"""How often :func:`locked_repository` tries again while it may wait for a lock."""


class RepositoryLocked(Conflict):
    """repository is locked: {detail}"""


class Lock:
    def __init__(self, backend: Backend, clock: Clock, exclusive: bool) -> None:
        self.backend, self.clock, self.exclusive = backend, clock, exclusive
        self.name = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _write(self) -> str:
        name = f"locks/{random_bytes(16).hex()}"
        doc = {
            "exclusive": self.exclusive,
            "time": self.clock.now().isoformat(),
            "host": socket.gethostname(),
            "pid": os.getpid(),
        }
        self.backend.put(name, json.dumps(doc).encode())
        return name

    def acquire(self) -> None:
        self.name = self._write()
        for _name, doc in live_locks(self.backend, self.clock.now(), skip=self.name):
            if self.exclusive or doc.get("exclusive"):
                self.release()
                kind = "an exclusive" if doc.get("exclusive") else "a"
                raise RepositoryLocked(
                    detail=f"{kind} lock is held by {doc.get('host')} pid {doc.get('pid')} "
                    f"since {doc.get('time')}"
                )
        self._thread = threading.Thread(target=self._refresh, daemon=True, name="sv-lock")
        self._thread.start()

    def _refresh(self) -> None:
        while not self._stop.wait(REFRESH_EVERY.total_seconds()):
            self.refresh()

    def refresh(self) -> bool:
        """Write a fresh lock, then delete the old one; False if the store refused the
        write (the old lock stays, the next period tries again: a refresh that gives up
        would let the lock age out under a running holder)."""
        try:
            new = self._write()
        except errors.BackendError:
            log.warning("repository lock %s: refresh failed; retried", self.name, exc_info=True)
            return False
        old, self.name = self.name, new
        with contextlib.suppress(errors.BackendError):
            self.backend.delete(old)
        return True

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self.name:
            with contextlib.suppress(errors.ObjectNotFound):
                self.backend.delete(self.name)
            self.name = ""


def live_locks(
    backend: Backend, now: datetime, *, skip: str = ""
) -> list[tuple[str, dict[str, object]]]:
    """The live locks but ``skip`` (the caller's own: not read back)."""
    found = []
    for info in backend.list("locks/"):
        if info.name == skip:
            continue
        try:
            doc = json.loads(backend.get(info.name))
            age = now - datetime.fromisoformat(str(doc["time"]))
        except (errors.ObjectNotFound, ValueError, KeyError, TypeError):
            continue  # gone meanwhile, or not a lock we can read (naive time, bad JSON)
        if age < STALE_AFTER and not holder_is_gone(doc):
            found.append((info.name, doc))
    return found


def holder_is_gone(doc: dict[str, object]) -> bool:
    """True when the lock was written on this host by a process that no longer exists."""
    pid = doc.get("pid")
    if doc.get("host") != socket.gethostname() or not isinstance(pid, int) or pid <= 0:
        return False
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # EPERM: it exists, owned by someone else
        return False
    return False


@contextlib.contextmanager
def locked(
    backend: Backend, clock: Clock, *, exclusive: bool, wait_seconds: float = 0.0
) -> Iterator[Lock]:
    """Lock a store (no repository opened: deleting a vault's storage); with
    ``wait_seconds`` as :func:`locked_repository`."""
    lock = _acquire(backend, clock, exclusive, wait_seconds)
    try:
        yield lock
    finally:
        lock.release()


@contextlib.contextmanager
def locked_repository(
    repo: Repository, clock: Clock, *, exclusive: bool, wait_seconds: float = 0.0
) -> Iterator[Lock]:
    """Lock ``repo``'s store, then reload its index under the lock. The index read when
    the repository was opened may predate a prune that finished before the lock was
    taken: a backup deduplicating against it would reference deleted packs, a prune
    would follow trees through them. With ``wait_seconds`` a lock held by another is
    tried again every :data:`RETRY_EVERY_SECONDS` until then (a backup that meets a
    prune waits for it instead of failing). A repository deleted meanwhile (its
    ``config`` is gone: deleting a store removes it first, under the exclusive lock) is
    refused, so a holder that opened it before the delete writes nothing after it."""
    lock = _acquire(repo.backend, clock, exclusive, wait_seconds)
    if not repo.backend.exists("config"):
        lock.release()
        _remove_empty_dirs(repo.backend)  # the lock just written made them again
        raise RepositoryLocked(detail="the repository was deleted")
    try:
        repo.reload_index()
        yield lock
    finally:
        lock.release()


def _remove_empty_dirs(backend: Backend) -> None:
    parts = [backend.warm, backend.cold] if isinstance(backend, tiered.TieredBackend) else [backend]
    for part in parts:
        if isinstance(part, local.LocalBackend):
            local.remove_empty_tree(part.root)


def _acquire(backend: Backend, clock: Clock, exclusive: bool, wait_seconds: float) -> Lock:
    tries = 1 + max(0, math.ceil(wait_seconds / RETRY_EVERY_SECONDS))
    pause = threading.Event()
    for attempt in range(tries):
        lock = Lock(backend, clock, exclusive)
        try:
            lock.acquire()
        except RepositoryLocked:
            if attempt + 1 == tries:
                raise
            pause.wait(RETRY_EVERY_SECONDS)
            continue
        return lock
    raise AssertionError("unreachable")  # pragma: no cover
