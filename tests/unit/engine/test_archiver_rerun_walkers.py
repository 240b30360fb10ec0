"""A rerun with ``archiver.RERUN_WALKERS`` on: walk workers launched by bytes queued to
read (a large changed file), never by entries listed (a no-change rerun of a big tree
stays in one process), and the tree is the one-process path's."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path

import pytest

from helpers.walk_launches import count_launches
from snowvault.engine import archiver, walk_workers
from snowvault.engine.backends.local import LocalBackend
from snowvault.engine.crypto import KdfParams
from snowvault.engine.repository import Repository

NOW = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
BIG = 700_000  # above the default chunker's 512 KiB minimum: chunked


def _tree(root: Path) -> None:
    for top in range(3):
        for d in range(3):
            sub = root / f"t{top}" / f"d{d}"
            sub.mkdir(parents=True)
            for i in range(8):
                (sub / f"f{i}").write_bytes(bytes([top, d, i]) * (40 + 29 * i))
    (root / "image.bin").write_bytes(random.Random(3).randbytes(BIG))


@pytest.fixture
def launches(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    monkeypatch.delenv("SNOWVAULT_ENGINE_PROCESSES", raising=False)
    monkeypatch.setattr(archiver, "RERUN_WALKERS", True)
    monkeypatch.setattr(walk_workers, "LAUNCH_ENTRIES", 1)  # would launch at once if counted
    monkeypatch.setattr(walk_workers, "LAUNCH_BYTES", BIG)
    return count_launches(monkeypatch)


def test_a_rerun_launches_walkers_by_bytes_to_read_not_by_entries(
    tmp_path: Path, launches: list[int]
) -> None:
    src = tmp_path / "src"
    _tree(src)
    repo = Repository.init(LocalBackend(tmp_path / "r"), password="pw", kdf=KdfParams.for_tests())
    first = archiver.backup_paths(repo, [src], now=NOW, walkers=0, processes=0)
    same = archiver.backup_paths(repo, [src], now=NOW, parent=first.rp_id)
    assert launches == []  # nothing to read: one process, however many entries it lists
    assert same.manifest.tree == first.manifest.tree
    (src / "t1" / "d2" / "f0").write_bytes(b"changed")
    # twice the launch mark: the image counts at least BIG whether or not its parent's
    # chunks may be taken (archiver.PARENT_SHARE halves it when the parent version had
    # two chunks or more, which this repository's chunker seed decides for BIG bytes)
    (src / "image.bin").write_bytes(random.Random(4).randbytes(2 * BIG))
    again = archiver.backup_paths(repo, [src], now=NOW, parent=same.rp_id)
    assert launches == [1]  # the image's bytes, queued before the subtrees were walked
    reference = archiver.backup_paths(
        repo, [src], now=NOW, parent=same.rp_id, walkers=0, processes=0
    )
    assert again.manifest.tree == reference.manifest.tree
    assert again.manifest.summary.files_changed == reference.manifest.summary.files_changed == 2
