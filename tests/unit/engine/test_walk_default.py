"""Which backups walk in worker processes when neither the caller nor the environment
says (engine/walk_workers.py, ``DEFAULT_ON``): an initial backup, once it has listed
``LAUNCH_ENTRIES`` entries or queued ``LAUNCH_BYTES`` to read; a rerun only by bytes
(``archiver.RERUN_WALKERS``)."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from helpers.tree_state import snapshot
from helpers.walk_launches import count_launches
from snowvault.engine import archiver, restorer, walk_workers
from snowvault.engine.backends.local import LocalBackend
from snowvault.engine.crypto import KdfParams
from snowvault.engine.repository import Repository

NOW = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


def _tree(root: Path) -> None:
    for top in range(4):
        for d in range(3):
            sub = root / f"t{top}" / f"d{d}"
            sub.mkdir(parents=True)
            for i in range(10):
                (sub / f"f{i}").write_bytes(bytes([top, d, i]) * (50 + 31 * i))


@pytest.fixture
def launches(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    return count_launches(monkeypatch)


def test_an_initial_backup_launches_a_worker_once_it_has_listed_enough_entries(
    tmp_path: Path, launches: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "src"
    _tree(src)
    repo = Repository.init(LocalBackend(tmp_path / "r"), password="pw", kdf=KdfParams.for_tests())
    ref = archiver.backup_paths(repo, [src], now=NOW, walkers=0, processes=0)
    small = archiver.backup_paths(repo, [src], now=NOW)  # 160 entries: below the mark
    assert launches == []
    assert small.manifest.tree == ref.manifest.tree
    monkeypatch.setattr(walk_workers, "LAUNCH_ENTRIES", 20)  # reached inside t0
    big = archiver.backup_paths(repo, [src], now=NOW)
    assert launches == [1]
    assert big.manifest.tree == ref.manifest.tree
    assert big.manifest.summary.files_new == ref.manifest.summary.files_new == 120
    out = tmp_path / "out"
    restorer.restore(Repository.open(repo.backend, password="pw"), big.rp_id, out)
    assert snapshot(out) == snapshot(src)


def test_a_rerun_launches_workers_by_bytes_to_read_only_unless_asked(
    tmp_path: Path, launches: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "src"
    _tree(src)
    repo = Repository.init(LocalBackend(tmp_path / "r"), password="pw", kdf=KdfParams.for_tests())
    first = archiver.backup_paths(repo, [src], now=NOW, walkers=0)
    monkeypatch.setattr(walk_workers, "LAUNCH_ENTRIES", 1)  # entries never launch a rerun's
    monkeypatch.setattr(walk_workers, "LAUNCH_BYTES", 1 << 40)
    (src / "t3" / "d2" / "f0").write_bytes(b"changed")
    again = archiver.backup_paths(repo, [src], now=NOW, parent=first.rp_id)
    assert launches == []  # a rerun reading little: the one-process path
    assert again.manifest.summary.files_changed == 1
    monkeypatch.setattr(archiver, "RERUN_WALKERS", False)  # the rule off: none, even by bytes
    monkeypatch.setattr(walk_workers, "LAUNCH_BYTES", 0)
    os.utime(src / "t3" / "d2" / "f0", ns=(2, 2))
    again = archiver.backup_paths(repo, [src], now=NOW, parent=again.rp_id)
    assert launches == []
    monkeypatch.setattr(archiver, "RERUN_WALKERS", True)
    monkeypatch.setenv("SNOWVAULT_ENGINE_WALKERS", "auto")  # asked for: lazily, reruns too
    os.utime(src / "t0" / "d0" / "f1", ns=(1, 1))
    third = archiver.backup_paths(repo, [src], now=NOW, parent=again.rp_id)
    assert launches == [1]
    assert third.manifest.summary.files_changed == 1
    assert third.manifest.summary.files_unchanged == 119


def test_a_tree_the_quick_listing_finds_large_gets_its_worker_at_once(
    tmp_path: Path, launches: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "src"
    _tree(src)  # 4 + 12 directories and 120 files: 136 entries below the root
    root = os.fsencode(src)
    assert walk_workers.large_tree([root], 136)
    assert not walk_workers.large_tree([root], 137)
    assert not walk_workers.large_tree([os.fsencode(src / "t0" / "d0" / "f1")], 1)  # a file
    repo = Repository.init(LocalBackend(tmp_path / "r"), password="pw", kdf=KdfParams.for_tests())
    ref = archiver.backup_paths(repo, [src], now=NOW, walkers=0, processes=0)
    monkeypatch.setattr(walk_workers, "PRESCAN_ENTRIES", 100)
    monkeypatch.setattr(walk_workers, "split_points", lambda *a: {root + b"/t0"})
    seen: list[bool] = []
    real_ready = walk_workers.SubtreeWorkers.ready

    def ready(self: walk_workers.SubtreeWorkers, to_read: int, entries: int = 0) -> bool:
        seen.append(real_ready(self, to_read, entries))
        return seen[-1]

    monkeypatch.setattr(walk_workers.SubtreeWorkers, "ready", ready)
    big = archiver.backup_paths(repo, [src], now=NOW)
    assert launches == [1]
    assert seen[0] is True  # launched before the walk: t0 (the first asked) goes to it
    assert big.manifest.tree == ref.manifest.tree
