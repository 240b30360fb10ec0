"""Chunked files are read on the archiver's reader thread while the walk goes on.

The walk takes a directory's files before its subdirectories, so a large file met early
is being chunked while the subdirectories are walked; its node is filled in when its
directory's tree is built. The tree is the one a walk that read it inline would give.
"""

from __future__ import annotations

import os
import random
import threading
from pathlib import Path
from typing import Any

import pytest

from snowvault.engine import archiver, restorer
from snowvault.testing import FakeRepository

from .test_archiver_roundtrip import NOW, real_repo

BIG = 300_000  # above SMALL_CHUNKS' minimum: chunked, so read on the reader thread


class GatedFS(archiver.FileSystem):
    """Holds the read of ``big.bin`` until the walk has listed ``sub``: a walk that read
    it inline would wait for itself (then ``waited`` is False after the timeout)."""

    def __init__(self) -> None:
        self.listed_sub = threading.Event()
        self.waited: bool | None = None
        self.threads: set[str] = set()

    def scandir(self, path: bytes) -> list[os.DirEntry[bytes]]:
        if os.path.basename(path) == b"sub":
            self.listed_sub.set()
        return super().scandir(path)

    def chunks(self, path: bytes, chunker: Any) -> Any:
        self.threads.add(threading.current_thread().name)
        if os.path.basename(path) == b"big.bin":
            self.waited = self.listed_sub.wait(timeout=10)
        return super().chunks(path, chunker)


def source(root: Path) -> None:
    (root / "sub").mkdir(parents=True)
    (root / "big.bin").write_bytes(random.Random(7).randbytes(BIG))
    (root / "sub" / "a.txt").write_bytes(b"a")
    (root / "sub" / "other.bin").write_bytes(random.Random(8).randbytes(BIG))


def test_a_large_file_is_chunked_while_the_walk_lists_the_subdirectories(
    tmp_path: Path,
) -> None:
    source(tmp_path / "src")
    repo = real_repo()
    fs = GatedFS()
    seen: list[Any] = []
    result = archiver.backup_paths(repo, [tmp_path / "src"], now=NOW, fs=fs, progress=seen.append)
    assert fs.waited is True
    assert {name.split("_")[0] for name in fs.threads} == {"sv-read"}
    summary = result.manifest.summary
    assert (summary.files_new, summary.bytes_read) == (3, 2 * BIG + 1)
    assert seen[-1].bytes_done == 2 * BIG + 1
    restorer.restore(repo, result.rp_id, tmp_path / "out")
    restored = (tmp_path / "out" / "big.bin").read_bytes()
    assert restored == (tmp_path / "src" / "big.bin").read_bytes()


def test_the_tree_is_the_one_an_inline_read_gives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source(tmp_path / "src")
    repo = real_repo()
    threaded = archiver.backup_paths(repo, [tmp_path / "src"], now=NOW)
    monkeypatch.setattr(archiver, "READ_ON_THREAD", False)
    fs = GatedFS()
    fs.listed_sub.set()
    inline = archiver.backup_paths(repo, [tmp_path / "src"], now=NOW, fs=fs)
    assert fs.threads == {"MainThread"}
    assert inline.manifest.tree == threaded.manifest.tree
    assert inline.manifest.summary.bytes_read == threaded.manifest.summary.bytes_read


class FailingFS(archiver.FileSystem):
    def chunks(self, path: bytes, chunker: Any) -> Any:
        if os.path.basename(path) == b"big.bin":
            raise PermissionError(13, "Permission denied", path)
        return super().chunks(path, chunker)


def test_a_read_that_fails_on_the_reader_thread_leaves_the_file_out_as_an_error(
    tmp_path: Path,
) -> None:
    source(tmp_path / "src")
    repo = FakeRepository()
    result = archiver.backup_paths(repo, [tmp_path / "src"], now=NOW, fs=FailingFS())
    [err] = result.manifest.errors
    assert err.path.endswith("src/big.bin") and "Permission denied" in err.error
    assert result.manifest.partial and result.manifest.summary.files_new == 2
    restorer.restore(repo, result.rp_id, tmp_path / "out")
    assert sorted(os.listdir(tmp_path / "out")) == ["sub"]


class BrokenWalkFS(archiver.FileSystem):
    """Fails the walk (not an OSError: the backup fails) while ``big.bin`` is read."""

    def __init__(self) -> None:
        self.reading = threading.Event()
        self.chunks_taken = 0

    def chunks(self, path: bytes, chunker: Any) -> Any:
        for chunk in super().chunks(path, chunker):
            self.reading.set()
            self.chunks_taken += 1
            yield chunk

    def scandir(self, path: bytes) -> list[os.DirEntry[bytes]]:
        if os.path.basename(path) == b"sub":
            self.reading.wait(timeout=10)
            raise RuntimeError("walk broke")
        return super().scandir(path)


def test_a_failed_walk_stops_the_reader_thread_before_the_backup_returns(
    tmp_path: Path,
) -> None:
    (tmp_path / "src" / "sub").mkdir(parents=True)
    (tmp_path / "src" / "big.bin").write_bytes(random.Random(9).randbytes(40 * BIG))
    fs = BrokenWalkFS()
    try:
        archiver.backup_paths(FakeRepository(), [tmp_path / "src"], now=NOW, fs=fs)
    except RuntimeError as exc:
        assert str(exc) == "walk broke"
    else:
        raise AssertionError("the backup should have failed")
    assert fs.chunks_taken >= 1
    assert not any(t.name.startswith("sv-read") for t in threading.enumerate())
