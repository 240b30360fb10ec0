"""Deleting a vault's storage under the repository's exclusive lock: it waits for a sweep
that holds the repository, and a sweep that opened the repository before the delete and
locks it afterwards writes nothing (the race that once left a deleted vault's directory)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from snowvault.control.services import vaults
from snowvault.engine import locks
from snowvault.engine.backends.local import LocalBackend
from snowvault.engine.crypto import KdfParams
from snowvault.engine.repository import Repository
from snowvault.testing import FakeClock

KDF = KdfParams.for_tests()


def _repo(root: Path) -> Repository:
    return Repository.init(LocalBackend(root), password="pw", kdf=KDF)


def test_destroy_waits_for_a_holder_then_leaves_nothing(tmp_path: Path) -> None:
    clock = FakeClock()
    root = tmp_path / "vault-1"
    repo = _repo(root)
    released = threading.Event()

    def hold() -> None:
        with locks.locked_repository(repo, clock, exclusive=False):
            time.sleep(1.0)  # a prune or an integrity check at work
            (root / "during").write_bytes(b"written while the delete waited")
            released.set()

    holder = threading.Thread(target=hold)
    holder.start()
    time.sleep(0.2)
    vaults._destroy(LocalBackend(root), clock)
    holder.join()
    assert released.is_set()
    assert not root.exists()  # what the holder wrote before letting go went with the rest


def test_a_sweep_that_opened_the_repository_before_the_delete_writes_nothing(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    root = tmp_path / "vault-2"
    _repo(root).close()
    late = Repository.open(LocalBackend(root), password="pw")  # a sweep, before the delete
    vaults._destroy(LocalBackend(root), clock)
    assert not root.exists()
    deleted = pytest.raises(locks.RepositoryLocked, match="the repository was deleted")
    with deleted, locks.locked_repository(late, clock, exclusive=True):
        pass
    assert not root.exists()  # not even the directories its lock made again
