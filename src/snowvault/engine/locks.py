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

**Job locks** (:func:`hold_job_lock`, :func:`release_job_lock`): a shared lock held for a
whole job whose calls any server of a fleet may answer (an agent's backup: its packs are
indexed call by call, but referenced only by its manifest at the end, and a prune in
between would delete them). Its name derives from the job id, so whichever server
answers the job's next call finds it by listing ``locks/``, with no server's memory::

    locks/job-<tag>-<YYYYmmddTHHMMSSZ>-<random>     # tag = SHA-256(job id), 32 hex

Its document has no ``pid`` (a job outlives the server process that took its lock: it is
judged by its age alone, as a lock of another host) and names the ``job``. Any server
refreshes it (write a new one, delete the older ones of the job) once it is older than
``REFRESH_EVERY``; the staleness rule is the same ``STALE_AFTER``. Two servers refreshing
at once leave two live locks of the job until the next refresh or the release: the safe
side.
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
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from snowvault.core.clock import Clock
from snowvault.core.errors import Conflict
from snowvault.engine import errors
from snowvault.engine.backends import local, tiered
from snowvault.engine.backends.base import Backend
from snowvault.engine.crypto import content_hash, random_bytes

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


JOB_LOCK_PREFIX = "locks/job-"
_STAMP = "%Y%m%dT%H%M%SZ"


def job_lock_tag(job_id: str) -> str:
    """The part of a job lock's name that names its job (a hash: a job id in a store's
    listing would tell a store reader which jobs run)."""
    return content_hash(f"snowvault/job-lock/v1|{job_id}".encode()).hex()[:32]


def _job_lock_names(backend: Backend, job_id: str) -> list[tuple[str, datetime | None]]:
    """The job's locks in the store with the times their names carry (None: unreadable)."""
    prefix = f"{JOB_LOCK_PREFIX}{job_lock_tag(job_id)}-"
    found: list[tuple[str, datetime | None]] = []
    for info in backend.list("locks/"):
        if not info.name.startswith(prefix):
            continue
        stamp = info.name[len(prefix) :].split("-", 1)[0]
        try:
            when: datetime | None = datetime.strptime(stamp, _STAMP).replace(tzinfo=UTC)
        except ValueError:
            when = None
        found.append((info.name, when))
    return found


def _write_job_lock(backend: Backend, clock: Clock, job_id: str) -> str:
    now = clock.now()
    name = (
        f"{JOB_LOCK_PREFIX}{job_lock_tag(job_id)}-{now.astimezone(UTC).strftime(_STAMP)}"
        f"-{random_bytes(8).hex()}"
    )
    doc = {"exclusive": False, "time": now.isoformat(), "host": socket.gethostname(), "job": job_id}
    backend.put(name, json.dumps(doc).encode())
    return name


def hold_job_lock(
    backend: Backend, clock: Clock, job_id: str, *, wait_seconds: float = 0.0
) -> list[tuple[str, dict[str, object]]]:
    """Make sure job ``job_id`` holds a fresh shared lock on ``backend``: none yet, one
    written and the others listed (RepositoryLocked when a live exclusive lock is there
    after ``wait_seconds``, the new lock deleted again); one older than
    ``REFRESH_EVERY``, a new one written and the older ones of the job deleted; a fresh
    one, nothing written (one listing). The other jobs' live locks seen when a lock was
    written, ``[(name, document)]`` (the caller may end those of jobs that ended: a
    job whose lease ran out never released its lock), else []."""
    now = clock.now()
    mine = _job_lock_names(backend, job_id)
    newest = max((when for _n, when in mine if when is not None), default=None)
    if newest is not None and now - newest < REFRESH_EVERY:
        return []
    if newest is not None and now - newest < STALE_AFTER:  # held, but old: refresh
        _write_job_lock(backend, clock, job_id)  # (no live exclusive lock can be there)
        _delete_all(backend, [name for name, _when in mine])
        return []
    others = _acquire_job_lock(backend, clock, job_id, wait_seconds)
    _delete_all(backend, [name for name, _when in mine])  # stale ones: aged out
    return others


def _delete_all(backend: Backend, names: list[str]) -> None:
    for name in names:
        with contextlib.suppress(errors.BackendError):
            backend.delete(name)


def _acquire_job_lock(
    backend: Backend, clock: Clock, job_id: str, wait_seconds: float
) -> list[tuple[str, dict[str, object]]]:
    tries = 1 + max(0, math.ceil(wait_seconds / RETRY_EVERY_SECONDS))
    pause = threading.Event()
    for attempt in range(tries):
        new = _write_job_lock(backend, clock, job_id)
        others = live_locks(backend, clock.now(), skip=new)
        held = [doc for _name, doc in others if doc.get("exclusive")]
        if not held:
            return [(n, d) for n, d in others if "job" in d]
        with contextlib.suppress(errors.ObjectNotFound):
            backend.delete(new)
        if attempt + 1 == tries:
            doc = held[0]
            raise RepositoryLocked(
                detail=f"an exclusive lock is held by {doc.get('host')} pid {doc.get('pid')} "
                f"since {doc.get('time')}"
            )
        pause.wait(RETRY_EVERY_SECONDS)
    raise AssertionError("unreachable")  # pragma: no cover


def release_job_lock(backend: Backend, job_id: str) -> int:
    """Delete every lock of job ``job_id`` (gone already: fine); how many were deleted."""
    deleted = 0
    for name, _when in _job_lock_names(backend, job_id):
        with contextlib.suppress(errors.ObjectNotFound):
            backend.delete(name)
            deleted += 1
    return deleted


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
