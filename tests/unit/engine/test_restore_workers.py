"""A streamed restore whose runs are written by worker processes (restore_workers.py)
gives the tree the threads give -- contents, sparse holes, hard links, xattrs, non-UTF-8
names, modes and times -- and the same per-file errors for a damaged blob; only when
asked (SNOWVAULT_ENGINE_RESTORERS) and only from a Repository on a local store."""

from __future__ import annotations

import os
import random
from datetime import UTC, datetime
from pathlib import Path

import pytest
from tests.helpers.tree_state import snapshot, xattrs_ok

from snowvault.engine import archiver, restore_workers, restorer
from snowvault.engine.repository import Repository
from snowvault.testing import FakeRepository
from snowvault.testing.repository import small_chunk_repository

NOW = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


def _source(root: Path) -> None:
    rng = random.Random(1508)
    for d in range(5):
        folder = root / f"dir{d}"
        folder.mkdir(parents=True)
        for i in range(60):
            body = rng.randbytes(rng.randrange(0, 4000)) if i % 3 else b"text %d " % i * 40
            (folder / f"f{i}.txt").write_bytes(body)
    (root / "big.bin").write_bytes(rng.randbytes(700_000))
    with open(root / "sparse.img", "wb") as fh:
        fh.write(b"head")
        fh.seek(300_000)
        fh.write(b"middle")
        fh.truncate(600_000)  # a trailing hole
    os.link(root / "dir1" / "f1.txt", root / "dir2" / "linked")
    (root / os.fsdecode(b"caf\xe9-latin1")).write_bytes(b"not utf-8")
    os.chmod(root / "dir3" / "f2.txt", 0o640)
    if xattrs_ok(root):
        os.setxattr(root / "dir0" / "f1.txt", "user.note", b"kept")
    os.utime(root / "big.bin", ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))


@pytest.fixture
def backed_up(tmp_path: Path) -> tuple[Repository, str, Path]:
    src = tmp_path / "src"
    src.mkdir()
    _source(src)
    repo = small_chunk_repository(tmp_path / "repo")
    return repo, archiver.backup_paths(repo, [src], now=NOW).rp_id, src


def _restore(
    repo: Repository, rp_id: str, target: Path, restorers: str, mp: pytest.MonkeyPatch
) -> restorer.RestoreResult:
    mp.setenv("SNOWVAULT_ENGINE_RESTORERS", restorers)
    return restorer.restore(repo, rp_id, target)


def test_workers_restore_what_the_threads_restore(
    backed_up: tuple[Repository, str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, rp_id, src = backed_up
    started = []
    launch = restore_workers._launch

    def counted(init: tuple[object, ...]) -> restore_workers._Worker:
        started.append(1)
        return launch(init)

    monkeypatch.setattr(restore_workers, "_launch", counted)
    monkeypatch.setattr(restorer, "RUN_FILES", 8)  # many runs, both workers busy
    result = _restore(repo, rp_id, tmp_path / "workers", "2", monkeypatch)
    assert started == [1, 1]
    threads = _restore(repo, rp_id, tmp_path / "threads", "0", monkeypatch)
    assert started == [1, 1]  # none for the threads' restore
    assert result.errors == threads.errors == []
    assert (result.files, result.bytes) == (threads.files, threads.bytes)
    got = snapshot(tmp_path / "workers")
    assert got == snapshot(tmp_path / "threads") == snapshot(src)
    linked = os.stat(tmp_path / "workers" / "dir2" / "linked")
    assert linked.st_ino == os.stat(tmp_path / "workers" / "dir1" / "f1.txt").st_ino
    assert os.stat(tmp_path / "workers" / "sparse.img").st_blocks * 512 < 100_000


def test_a_damaged_blob_fails_the_same_files_in_workers_as_in_threads(
    backed_up: tuple[Repository, str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, rp_id, _ = backed_up
    pack, offset, length = repo.blob_location(_first_blob(repo, rp_id, b"dir4/f1.txt"))
    with open(tmp_path / "repo" / pack, "r+b") as fh:
        fh.seek(offset + length // 2)
        byte = fh.read(1)
        fh.seek(offset + length // 2)
        fh.write(bytes([byte[0] ^ 0xFF]))
    result = _restore(repo, rp_id, tmp_path / "workers", "2", monkeypatch)
    threads = _restore(repo, rp_id, tmp_path / "threads", "0", monkeypatch)
    failed = sorted(e.path for e in result.errors)
    assert "dir4/f1.txt" in failed
    assert failed == sorted(e.path for e in threads.errors)
    assert not (tmp_path / "workers" / "dir4" / "f1.txt").exists()  # removed, not left wrong
    assert result.files == threads.files


def _first_blob(repo: Repository, rp_id: str, rel: bytes) -> bytes:
    tree = restorer.root_tree(repo, rp_id)
    *dirs, name = rel.split(b"/")
    for part in dirs:
        node = next(n for n in restorer.load_tree(repo, tree, b"") if n.name == part)
        assert node.subtree is not None
        tree = node.subtree
    node = next(n for n in restorer.load_tree(repo, tree, b"") if n.name == name)
    blob = node.content[0][0]
    assert blob is not None
    return bytes.fromhex(blob)


def test_workers_by_size_or_when_asked_and_only_from_a_local_repository(
    backed_up: tuple[Repository, str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, _, _ = backed_up
    monkeypatch.delenv("SNOWVAULT_ENGINE_RESTORERS", raising=False)
    monkeypatch.setattr(restore_workers, "_cores", lambda: 2)
    assert restore_workers.DEFAULT_FILES is not None
    assert restore_workers.wanted(repo, restore_workers.DEFAULT_FILES) == 2  # by default
    assert restore_workers.wanted(repo, restore_workers.DEFAULT_FILES - 1) == 0
    monkeypatch.setattr(restore_workers, "DEFAULT_FILES", None)
    assert restore_workers.wanted(repo, 10**6) == 0
    monkeypatch.setattr(restore_workers, "DEFAULT_FILES", 1000)
    assert restore_workers.wanted(repo, 999) == 0
    assert restore_workers.wanted(repo, 1000) == 2
    assert restore_workers.wanted(FakeRepository(), 10**6) == 0
    monkeypatch.setattr(restore_workers, "_cores", lambda: 1)
    assert restore_workers.wanted(repo, 10**6) == 0
    monkeypatch.setattr(restore_workers, "_cores", lambda: 2)
    monkeypatch.setenv("SNOWVAULT_ENGINE_RESTORERS", "0")
    assert restore_workers.wanted(repo, 10**6) == 0
    monkeypatch.setenv("SNOWVAULT_ENGINE_RESTORERS", "3")
    assert restore_workers.wanted(repo, 5) == 3
    assert restore_workers.wanted(FakeRepository(), 5) == 0
