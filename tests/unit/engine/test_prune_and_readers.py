"""A prune next to the readers and writers of the same repository, interleaved by hand.

The scheduler story flaked (about 1 run in 3) at the simulated day 36: the expiry's
prune ran in the scheduler's tick while a worker thread opened the same vault for the
day's backup. Opening a repository reads every index segment WITHOUT the repository
lock; a prune deletes the segments it supersedes; a segment listed before the delete
and read after it raised ``object not found: index/…``. And a backup that opened the
repository before a prune but took its shared lock after it deduplicated against the
packs the prune had just deleted. These tests put each interleaving at one chosen
point, deterministically (no threads, a FakeClock).
"""

from __future__ import annotations

import io
import random
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from snowvault.engine import check, errors, locks, prune, restorer, stream_backup
from snowvault.engine.backends.base import ObjectInfo
from snowvault.engine.backends.memory import MemoryBackend
from snowvault.engine.crypto import KdfParams
from snowvault.engine.repository import Repository
from snowvault.testing import FakeClock
from snowvault.testing.backends import FaultyBackend

KDF = KdfParams.for_tests()


class HookedBackend(MemoryBackend):
    """A memory store that runs ``hook`` once, just before the first read of an index
    segment: the moment a concurrent prune can delete what was listed."""

    def __init__(self) -> None:
        super().__init__()
        self.hook: Callable[[], None] | None = None
        self.phantom: str | None = None  # a name listed under index/ that is not there

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        yield from super().list(prefix)
        if self.phantom is not None and self.phantom.startswith(prefix):
            yield ObjectInfo(self.phantom, 1)

    def get(self, name: str, offset: int = 0, length: int | None = None) -> bytes:
        hook = self.hook
        if hook is not None and name.startswith("index/"):
            self.hook = None
            hook()
        return super().get(name, offset, length)


def _backup(repo: Repository, clock: FakeClock, data: bytes, name: str = "f") -> str:
    result = stream_backup.backup_stream(repo, name, io.BytesIO(data), now=clock.now(), clock=clock)
    return result.rp_id


def _restored(repo: Repository, rp_id: str, tmp: Path) -> bytes:
    target = tmp / rp_id
    restorer.restore(repo, rp_id, str(target))
    (only,) = [p for p in target.rglob("*") if p.is_file()]
    return only.read_bytes()


def _two_points_then_forget_the_first(
    backend: MemoryBackend, clock: FakeClock
) -> tuple[str, bytes]:
    """A repository with one point left and a prune's worth of garbage; the kept point's
    id and data."""
    repo = Repository.init(backend, password="pw", kdf=KDF, pack_size=64 * 1024)
    _backup(repo, clock, random.Random(1).randbytes(300_000), "old")
    kept_data = random.Random(2).randbytes(300_000)
    kept = _backup(repo, clock, kept_data, "new")
    (old,) = [rp for rp in repo.list_manifests() if rp != kept]
    prune.forget(repo, [old])
    repo.close()
    return kept, kept_data


def test_opening_while_a_prune_deletes_the_listed_segments_lists_again(tmp_path: Path) -> None:
    clock, backend = FakeClock(), HookedBackend()
    kept, kept_data = _two_points_then_forget_the_first(backend, clock)
    segments_before = set(Repository.open(backend, password="pw").index_segments())
    reports: list[prune.PruneReport] = []

    def prune_now() -> None:  # another holder prunes between our listing and our read
        reports.append(prune.prune(Repository.open(backend, password="pw"), clock))

    backend.hook = prune_now
    reader = Repository.open(backend, password="pw")  # used to raise ObjectNotFound
    assert reports and reports[0].packs_deleted > 0
    assert not segments_before & set(reader.index_segments())  # every listed one went
    assert _restored(reader, kept, tmp_path) == kept_data


def test_a_segment_lost_for_good_still_fails_the_open() -> None:
    clock, backend = FakeClock(), HookedBackend()
    _two_points_then_forget_the_first(backend, clock)
    backend.phantom = "index/" + "0" * 64  # listed every time, never readable

    with pytest.raises(errors.ObjectNotFound):
        Repository.open(backend, password="pw")


def test_a_backup_locked_after_a_prune_does_not_reuse_the_pruned_packs(tmp_path: Path) -> None:
    clock, backend = FakeClock(), MemoryBackend()
    repo = Repository.init(backend, password="pw", kdf=KDF, pack_size=64 * 1024)
    data = random.Random(3).randbytes(300_000)
    first = _backup(repo, clock, data, "a")
    repo.close()

    writer = Repository.open(backend, password="pw")  # index read: it knows first's packs
    other = Repository.open(backend, password="pw")
    prune.forget(other, [first])
    assert prune.prune(other, clock).packs_deleted > 0  # ...which are gone now
    with locks.locked_repository(writer, clock, exclusive=False):
        second = _backup(writer, clock, data, "b")  # same data: dedup would point at them
    writer.close()

    reopened = Repository.open(backend, password="pw")
    assert check.check(reopened, read_data=True).ok
    assert _restored(reopened, second, tmp_path) == data


def test_a_lock_whose_refresh_write_fails_keeps_the_old_lock_and_tries_again() -> None:
    clock, store = FakeClock(), MemoryBackend()
    faulty = FaultyBackend(store)
    with locks.locked(faulty, clock, exclusive=False) as lock:
        first = lock.name
        faulty.fail("put", nth=2)  # the first put wrote the lock, the second refreshes
        assert lock.refresh() is False  # used to end the refresh thread for good
        assert lock.name == first and store.exists(first)
        clock.advance(locks.REFRESH_EVERY.total_seconds())
        assert lock.refresh() is True
        assert lock.name != first and not store.exists(first)
        clock.advance(locks.STALE_AFTER.total_seconds() - 1)
        assert [name for name, _ in locks.live_locks(store, clock.now())] == [lock.name]


class _PruneEndsAfter(MemoryBackend):
    """A store where another holder's exclusive lock goes after ``lists`` listings of
    locks/ (a prune finishing while a backup tries again)."""

    def __init__(self, lists: int) -> None:
        super().__init__()
        self.lists, self.prune_lock = lists, ""

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        if prefix == "locks/" and self.prune_lock:
            self.lists -= 1
            if self.lists < 0:
                self.delete(self.prune_lock)
                self.prune_lock = ""
        yield from super().list(prefix)


def test_a_backup_meeting_a_prune_waits_for_it_when_asked_to() -> None:
    clock = FakeClock()
    backend = _PruneEndsAfter(lists=2)
    repo = Repository.init(backend, password="pw", kdf=KDF)
    prune_lock = locks.Lock(backend, clock, exclusive=True)
    prune_lock.acquire()
    backend.prune_lock = prune_lock.name

    with (  # not asked to wait: fails at once
        pytest.raises(locks.RepositoryLocked),
        locks.locked_repository(repo, clock, exclusive=False),
    ):
        pass
    with locks.locked_repository(repo, clock, exclusive=False, wait_seconds=5) as lock:
        assert not backend.prune_lock  # it tried until the prune's lock went
        assert [name for name, _ in locks.live_locks(backend, clock.now())] == [lock.name]
    assert list(backend.list("locks/")) == []  # and its own lock went with it
    prune_lock.release()  # its object went already; this ends its refresh thread


def test_a_lock_that_never_goes_fails_the_wait() -> None:
    clock, backend = FakeClock(), MemoryBackend()
    repo = Repository.init(backend, password="pw", kdf=KDF)
    with locks.locked(backend, clock, exclusive=True):
        with (
            pytest.raises(locks.RepositoryLocked),
            locks.locked_repository(repo, clock, exclusive=False, wait_seconds=1),
        ):
            pass
        assert len(list(backend.list("locks/"))) == 1  # the waiter left no lock behind
