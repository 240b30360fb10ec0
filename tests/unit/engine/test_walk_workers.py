"""Subtrees walked in worker processes give exactly what the single-process path gives.

The single-process path (``walkers=0, processes=0``) is the reference: backing the same
tree up with walk workers into the same repository must give the same tree id (same
nodes, same blob ids), the same counters and errors, packs that pass ``check
--read-data`` and a byte-identical restore -- sparse files, hard links across subtrees
(walked by different workers), xattrs and non-UTF-8 names included.
"""

from __future__ import annotations

import os
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from helpers.tree_state import snapshot, xattrs_ok
from snowvault.engine import archiver, check, errors, restorer, walk_workers
from snowvault.engine.backends.local import LocalBackend
from snowvault.engine.crypto import KdfParams
from snowvault.engine.excludes import Excludes
from snowvault.engine.progress import Progress
from snowvault.engine.repository import Repository
from snowvault.testing.repository import SMALL_CHUNKS

NOW = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


def _repo(path: Path) -> Repository:
    return Repository.init(
        LocalBackend(str(path)), password="pw", kdf=KdfParams.for_tests(), chunker=SMALL_CHUNKS
    )


def _source(root: Path) -> None:
    rng = random.Random(15)
    for top in range(3):
        for d in range(4):
            sub = root / f"top{top}" / f"dir{d}"
            sub.mkdir(parents=True)
            for i in range(25):
                size = rng.choice((0, 1, 100, 2000, 4095))
                body = rng.randbytes(size) if i % 3 else bytes([d]) * size  # duplicates
                (sub / f"f{i}").write_bytes(body)
            (sub / "deeper").mkdir()
            (sub / "deeper" / "x").write_bytes(rng.randbytes(300))
    (root / "top0" / "big.bin").write_bytes(rng.randbytes(100_000))  # chunked
    (root / "top1" / "empty_dir").mkdir()
    with open(root / "top2" / "dir1" / "sparse.img", "wb") as f:
        f.write(b"head")
        f.seek(200_000)
        f.write(b"tail")
        f.truncate(300_000)
    with open(root / "top2" / "hole", "wb") as f:
        f.truncate(3000)
    (root / "rootfile").write_bytes(b"at the top, walked by the parent")
    # one inode in three subtrees that different workers walk, and at the top
    (root / "top0" / "dir0" / "hard_a").write_bytes(b"linked" * 500)
    os.link(root / "top0" / "dir0" / "hard_a", root / "top1" / "dir3" / "hard_b")
    os.link(root / "top0" / "dir0" / "hard_a", root / "top2" / "dir2" / "hard_c")
    os.link(root / "top0" / "dir0" / "hard_a", root / "hard_top")
    (root / "top1" / "dir2" / os.fsdecode(b"caf\xe9")).write_bytes(b"latin-1 name")
    os.mkdir(root / "top2" / os.fsdecode(b"d\xffir"))
    (root / "top2" / os.fsdecode(b"d\xffir") / "inside").write_bytes(b"in a non-UTF-8 dir")
    os.symlink("../dir0/f1", root / "top0" / "dir1" / "link")
    if xattrs_ok(root / "rootfile"):
        os.setxattr(root / "top1" / "dir0" / "f2", "user.note", b"\x00\xff")
        os.setxattr(root / "top1" / "dir0", "user.dir", b"on a directory")


FIELDS = ("files_new", "files_changed", "files_unchanged", "dirs", "other", "bytes_read")


def _same_summary(a: Any, b: Any, reread: int = 0) -> None:
    """Equal summaries; ``reread``: bytes the workers read again (a hard link's file is
    read once per subtree holding one, the single-process path reads it once)."""
    for name in (*FIELDS, "total_size"):
        extra = reread if name == "bytes_read" else 0
        assert getattr(a.manifest.summary, name) == getattr(b.manifest.summary, name) + extra


@pytest.mark.parametrize("take_back", [False, True], ids=["workers-only", "shared"])
def test_walk_workers_match_the_single_process_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, take_back: bool
) -> None:
    monkeypatch.setattr(walk_workers, "TAKE_BACK", take_back)
    src = tmp_path / "src"
    _source(src)
    repo = _repo(tmp_path / "repo")
    seen: list[Progress] = []
    fast = archiver.backup_paths(repo, [src], now=NOW, walkers=2, progress=seen.append)
    parents_share = repo.stats_stored_bytes  # the top's files and trees: the rest came
    ref = archiver.backup_paths(repo, [src], now=NOW, walkers=0, processes=0)
    assert fast.manifest.tree == ref.manifest.tree
    _same_summary(fast, ref, reread=3 * 3000)  # three more subtrees with hard_a's inode
    assert fast.manifest.summary.files_new > 300
    if not take_back:  # this process stored only the top's files (big.bin) and trees
        assert 0 < 2 * parents_share < fast.manifest.summary.bytes_added
    assert ref.manifest.summary.bytes_added == 0  # the parent's index has the workers' packs
    assert seen[-1].files_done == ref.manifest.summary.files_new + ref.manifest.summary.other
    report = check.check(Repository.open(repo.backend, password="pw"), read_data=True)
    assert report.problems == [] and report.blobs > 0
    out = tmp_path / "out"
    restorer.restore(repo, fast.rp_id, out)
    assert snapshot(out) == snapshot(src)
    ino = os.stat(out / "top0" / "dir0" / "hard_a").st_ino
    assert os.stat(out / "top1" / "dir3" / "hard_b").st_ino == ino
    assert os.stat(out / "top2" / "dir2" / "hard_c").st_ino == ino
    assert os.stat(out / "hard_top").st_ino == ino
    assert os.stat(out / "top2" / "hole").st_blocks == 0


def test_reruns_with_walk_workers_reuse_the_parent(tmp_path: Path) -> None:
    src = tmp_path / "src"
    _source(src)
    repo = _repo(tmp_path / "repo")
    first = archiver.backup_paths(repo, [src], now=NOW, walkers=2)
    same = archiver.backup_paths(repo, [src], now=NOW, parent=first.rp_id, walkers=2)
    assert same.manifest.tree == first.manifest.tree
    assert same.manifest.summary.bytes_read == 0 and same.manifest.summary.files_changed == 0
    assert same.manifest.summary.bytes_added == 0
    (src / "top1" / "dir2" / "f5").write_bytes(b"new content")
    (src / "top2" / "dir3" / "new").write_bytes(b"a new file")
    second = archiver.backup_paths(repo, [src], now=NOW, parent=first.rp_id, walkers=2)
    ref = archiver.backup_paths(repo, [src], now=NOW, parent=first.rp_id, walkers=0, processes=0)
    assert second.manifest.tree == ref.manifest.tree
    _same_summary(second, ref)
    assert second.manifest.summary.files_changed == 1
    assert second.manifest.summary.files_new == 1
    assert second.manifest.summary.bytes_read == len(b"new content") + len(b"a new file")
    out = tmp_path / "out"
    restorer.restore(Repository.open(repo.backend, password="pw"), second.rp_id, out)
    assert snapshot(out) == snapshot(src)


def _too_deep(top: Path) -> bytes:
    """A directory whose path is longer than PATH_MAX (an error even for root): made
    one level at a time relative to its parent; the first entry that cannot be stat'ed."""
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    path = os.fsencode(top)
    try:
        while len(path) <= 4096:
            name = b"n" * 250
            os.mkdir(name, dir_fd=fd)
            inner = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = inner
            path += b"/" + name
        return path
    finally:
        os.close(fd)


def test_errors_and_excludes_inside_delegated_subtrees(tmp_path: Path) -> None:
    src = tmp_path / "src"
    _source(src)
    deep = _too_deep(src / "top1" / "dir1" / "deeper")
    repo = _repo(tmp_path / "repo")
    rules = ["top0/dir2", "*.img"]
    fast = archiver.backup_paths(repo, [src], now=NOW, walkers=2, excludes=rules)
    ref = archiver.backup_paths(repo, [src], now=NOW, walkers=0, processes=0, excludes=rules)
    assert fast.manifest.tree == ref.manifest.tree
    assert fast.manifest.errors == ref.manifest.errors
    assert [e.path for e in fast.manifest.errors] == [os.fsdecode(deep)]
    assert "too long" in fast.manifest.errors[0].error
    assert fast.manifest.partial
    _same_summary(fast, ref, reread=3 * 3000)
    assert fast.manifest.summary.files_new < 300  # top0/dir2 and sparse.img left out


def test_split_points_deepen_until_there_are_enough(tmp_path: Path) -> None:
    for path in ("a/x/1", "a/x/2", "a/y", "b", "c/z/3"):
        (tmp_path / path).mkdir(parents=True)
    (tmp_path / "file").write_bytes(b"")
    root = os.fsencode(tmp_path)

    def rel(points: set[bytes]) -> set[str]:
        return {os.path.relpath(os.fsdecode(p), tmp_path) for p in points}

    assert rel(walk_workers.split_points([root], Excludes(()), 3)) == {"a", "b", "c"}
    assert rel(walk_workers.split_points([root], Excludes(()), 4)) == {"a/x", "a/y", "b", "c/z"}
    assert rel(walk_workers.split_points([root], Excludes(()), 9)) == {
        "a/x/1",
        "a/x/2",
        "a/y",
        "b",
        "c/z/3",
    }
    assert rel(walk_workers.split_points([root], Excludes(["a"]), 9)) == {"b", "c/z/3"}
    two = [os.fsencode(tmp_path / "a"), os.fsencode(tmp_path / "b")]
    assert rel(walk_workers.split_points(two, Excludes(()), 2)) == {"a", "b"}


def test_walkers_are_off_for_stores_they_cannot_reopen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from snowvault.engine.backends.memory import MemoryBackend

    memory = Repository.init(MemoryBackend(), password="pw", kdf=KdfParams.for_tests())
    assert walk_workers.SubtreeWorkers.start(memory, 2, [], False) is None
    assert walk_workers.SubtreeWorkers.start(_repo(tmp_path / "r"), 0, [], False) is None
    monkeypatch.setenv("SNOWVAULT_ENGINE_WALKERS", "3")
    assert walk_workers.walkers_wanted(None) == 3
    assert walk_workers.walkers_wanted(1) == 1
    monkeypatch.setenv("SNOWVAULT_ENGINE_WALKERS", "auto")
    monkeypatch.setattr(walk_workers, "cores", lambda: 2)
    assert walk_workers.walkers_wanted(None) == 1
    monkeypatch.setattr(walk_workers, "cores", lambda: 1)
    assert walk_workers.walkers_wanted(None) == 0


def test_a_worker_that_dies_fails_the_backup_cleanly(tmp_path: Path) -> None:
    src = tmp_path / "src"
    _source(src)
    repo = _repo(tmp_path / "repo")
    pool = walk_workers.SubtreeWorkers.start(repo, 1, [], False)
    assert pool is not None
    try:
        pool._workers[0].process.kill()
        with pytest.raises(errors.EngineError, match="ended unexpectedly"):
            pool.submit(os.fsencode(src / "top0"), b"top0", 0, None).result()
    finally:
        pool.abort()


def test_what_two_workers_both_stored_prunes_to_what_restores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from snowvault.engine import prune
    from snowvault.testing import FakeClock

    monkeypatch.setattr(walk_workers, "TAKE_BACK", False)
    src = tmp_path / "src"
    for d in range(8):  # eight subtrees of the same files: both workers store them
        sub = src / f"d{d}" / "x"
        sub.mkdir(parents=True)
        for i in range(20):
            (sub / f"f{i}").write_bytes(bytes([i]) * (1000 + 97 * i))
    repo = _repo(tmp_path / "repo")
    done = archiver.backup_paths(repo, [src], now=NOW, walkers=2)
    assert done.manifest.summary.files_new == 160
    opened = Repository.open(repo.backend, password="pw")
    blobs = len(opened.master_index)
    report = prune.prune(opened, FakeClock())
    assert report.used_blobs == blobs  # every stored blob is used, however many copies
    after = Repository.open(repo.backend, password="pw")
    assert check.check(after, read_data=True).ok
    out = tmp_path / "out"
    restorer.restore(after, done.rp_id, out)
    assert snapshot(out) == snapshot(src)


def test_by_default_workers_start_only_once_the_backup_has_read_enough(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SNOWVAULT_ENGINE_WALKERS", raising=False)
    monkeypatch.setattr(walk_workers, "DEFAULT_ON", True)
    monkeypatch.setattr(walk_workers, "cores", lambda: 2)
    launched: list[int] = []
    real_launch = walk_workers._launch

    def counting(init: tuple[Any, ...]) -> Any:
        launched.append(1)
        return real_launch(init)

    monkeypatch.setattr(walk_workers, "_launch", counting)
    src = tmp_path / "src"
    _source(src)
    repo = _repo(tmp_path / "repo")
    ref = archiver.backup_paths(repo, [src], now=NOW, walkers=0, processes=0)
    small = archiver.backup_paths(repo, [src], now=NOW)  # reads 0.8 MB: no worker
    assert launched == []
    assert small.manifest.tree == ref.manifest.tree
    _same_summary(small, ref)  # the one-process path exactly (hard links read once)
    monkeypatch.setattr(walk_workers, "LAUNCH_BYTES", 0)  # at the first subtree to hand out
    monkeypatch.setattr(walk_workers, "TAKE_BACK", False)
    big = archiver.backup_paths(repo, [src], now=NOW)
    assert launched == [1]
    assert big.manifest.tree == ref.manifest.tree
    assert big.manifest.summary.files_new == ref.manifest.summary.files_new
