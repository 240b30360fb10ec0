"""What a rerun's changed files count toward launching walk workers (``_read_cost``): a
sparse file its allocated bytes, a file whose parent's chunks it may take a share of
them (archiver.PARENT_SHARE), a new file all of them; the trees are the one-process
path's either way."""

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
LAUNCH = 3 * 1024 * 1024


@pytest.fixture
def launches(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    monkeypatch.delenv("SNOWVAULT_ENGINE_PROCESSES", raising=False)
    monkeypatch.setattr(archiver, "RERUN_WALKERS", True)
    monkeypatch.setattr(walk_workers, "LAUNCH_BYTES", LAUNCH)
    return count_launches(monkeypatch)


def _repo(tmp_path: Path) -> Repository:
    return Repository.init(LocalBackend(tmp_path / "r"), password="pw", kdf=KdfParams.for_tests())


def _tree(src: Path) -> None:
    for d in range(3):
        (src / f"d{d}").mkdir(parents=True)
        (src / f"d{d}" / "a.txt").write_bytes(b"a" * (100 + d))


def _rerun_matches_one_process(repo: Repository, src: Path, parent: str) -> None:
    again = archiver.backup_paths(repo, [src], now=NOW, parent=parent)
    alone = archiver.backup_paths(repo, [src], now=NOW, parent=parent, walkers=0, processes=0)
    assert again.manifest.tree == alone.manifest.tree


def test_a_grown_file_with_its_parents_chunks_counts_a_share(
    tmp_path: Path, launches: list[int]
) -> None:
    src = tmp_path / "src"
    _tree(src)
    rng = random.Random(1)
    log = src / "service.log"
    log.write_bytes(rng.randbytes(LAUNCH + LAUNCH // 4))  # several chunks of 512 KiB+
    repo = _repo(tmp_path)
    first = archiver.backup_paths(repo, [src], now=NOW, walkers=0, processes=0)
    with log.open("ab") as out:
        out.write(rng.randbytes(1000))
    _rerun_matches_one_process(repo, src, first.rp_id)
    assert launches == []  # counted at PARENT_SHARE of its size, below LAUNCH
    (src / "new.bin").write_bytes(rng.randbytes(LAUNCH))
    _rerun_matches_one_process(repo, src, first.rp_id)
    assert launches == [1]  # a new file counts whole


def test_a_sparse_file_counts_its_allocated_bytes(tmp_path: Path, launches: list[int]) -> None:
    src = tmp_path / "src"
    _tree(src)
    image = src / "disk.raw"
    with image.open("wb") as out:
        out.truncate(4 * LAUNCH)
        out.seek(LAUNCH)
        out.write(random.Random(2).randbytes(64 * 1024))
    if image.stat().st_blocks * 512 >= image.stat().st_size:
        pytest.skip("the file system does not keep holes")
    repo = _repo(tmp_path)
    first = archiver.backup_paths(repo, [src], now=NOW, walkers=0, processes=0)
    image.unlink()  # rewritten: 64 KiB of data elsewhere
    with image.open("wb") as out:
        out.truncate(4 * LAUNCH)
        out.seek(2 * LAUNCH)
        out.write(random.Random(3).randbytes(64 * 1024))
    _rerun_matches_one_process(repo, src, first.rp_id)
    assert launches == []
