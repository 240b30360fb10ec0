"""Small files read in worker processes give exactly what the single-process path gives.

The pure-Python path (``processes=0``) is the reference: backing the same tree up with
worker processes into the same repository must give the same tree id (same nodes, same
blob ids), the same counters, packs that pass ``check --read-data`` and a byte-identical
restore -- sparse files, hard links, xattrs and non-UTF-8 names included.
"""

from __future__ import annotations

import os
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from helpers.tree_state import snapshot, xattrs_ok
from snowvault.engine import archiver, check, file_workers, restorer
from snowvault.engine.backends.memory import MemoryBackend
from snowvault.engine.crypto import KdfParams
from snowvault.engine.excludes import Excludes
from snowvault.engine.repository import Repository
from snowvault.engine.tree import decode_tree
from snowvault.testing.repository import SMALL_CHUNKS

NOW = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


def _repo() -> Repository:
    return Repository.init(
        MemoryBackend(), password="pw", kdf=KdfParams.for_tests(), chunker=SMALL_CHUNKS
    )


def _source(root: Path) -> None:
    rng = random.Random(7)
    for d in range(6):
        sub = root / f"dir{d}"
        sub.mkdir(parents=True)
        for i in range(70):  # > one batch of files overall, several batches in flight
            size = rng.choice((1, 100, 2000, 4095))
            body = rng.randbytes(size) if i % 3 else bytes([d]) * size  # some duplicates
            (sub / f"f{i}").write_bytes(body)
    (root / "empty").write_bytes(b"")
    (root / "big.bin").write_bytes(rng.randbytes(100_000))  # chunked, in segments
    with open(root / "sparse.img", "wb") as f:  # large and sparse: holes and blobs
        f.write(b"head")
        f.seek(200_000)
        f.write(b"tail")
        f.truncate(300_000)
    with open(root / "hole", "wb") as f:  # sparse and all zero: a hole, not a blob
        f.truncate(3000)
    (root / "hard_a").write_bytes(b"linked")
    os.link(root / "hard_a", root / "dir1" / "hard_b")
    (root / os.fsdecode(b"caf\xe9")).write_bytes(b"latin-1 name")
    os.symlink("dir0/f1", root / "link")
    if xattrs_ok(root / "hard_a"):
        os.setxattr(root / "dir0" / "f2", "user.note", b"\x00\xff")


def test_worker_processes_match_the_single_process_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # large files are cut in several segments, each resumed at the last chunk boundary,
    # and each segment's chunks sealed in several runs (on any worker)
    monkeypatch.setattr(file_workers, "SEGMENT_BYTES", 60_000)
    monkeypatch.setattr(file_workers, "SEAL_BYTES", 25_000)
    src = tmp_path / "src"
    _source(src)
    repo = _repo()
    fast = archiver.backup_paths(repo, [src], now=NOW, processes=2)
    ref = archiver.backup_paths(repo, [src], now=NOW, processes=0)
    assert fast.manifest.tree == ref.manifest.tree
    for field in ("files_new", "files_changed", "files_unchanged", "bytes_read", "total_size"):
        assert getattr(fast.manifest.summary, field) == getattr(ref.manifest.summary, field)
    assert fast.manifest.summary.bytes_read > 0
    assert ref.manifest.summary.bytes_added == 0  # the workers stored every blob
    report = check.check(repo, read_data=True)
    assert report.problems == [] and report.blobs > 0
    out = tmp_path / "out"
    restorer.restore(repo, fast.rp_id, out)
    assert snapshot(out) == snapshot(src)
    assert os.stat(out / "hard_a").st_ino == os.stat(out / "dir1" / "hard_b").st_ino
    assert os.stat(out / "hole").st_blocks == 0


def test_incremental_with_workers_reads_only_changed_files(tmp_path: Path) -> None:
    src = tmp_path / "src"
    _source(src)
    repo = _repo()
    first = archiver.backup_paths(repo, [src], now=NOW, processes=2)
    (src / "dir2" / "f5").write_bytes(b"new content")
    (src / "dir3" / "f6").touch()  # same bytes, new mtime: read, hashed, not stored again
    os.utime(src / "dir3" / "f6", ns=(1, 1))
    second = archiver.backup_paths(repo, [src], now=NOW, parent=first.rp_id, processes=2)
    ref = archiver.backup_paths(repo, [src], now=NOW, parent=first.rp_id, processes=0)
    assert second.manifest.tree == ref.manifest.tree
    assert second.manifest.summary.files_changed == 2
    assert second.manifest.summary.bytes_read == len(b"new content") + os.path.getsize(
        src / "dir3" / "f6"
    )
    out = tmp_path / "out"
    restorer.restore(repo, second.rp_id, out)
    assert snapshot(out) == snapshot(src)


def test_a_worker_reports_unreadable_files_and_skips_known_blobs(tmp_path: Path) -> None:
    repo = _repo()
    keys: Any = repo._keys
    known = repo.blob_id(b"known")
    file_workers._init_worker(None, keys._id_key, keys._enc_key, 3, SMALL_CHUNKS, known)
    (tmp_path / "k").write_bytes(b"known")
    (tmp_path / "n").write_bytes(b"new" * 100)
    files: list[file_workers.Item] = [
        (os.fsencode(tmp_path / "gone"), -1, 5, False, None),
        (os.fsencode(tmp_path / "k"), -1, 5, False, None),
        (os.fsencode(tmp_path / "n"), -1, 300, False, None),
        (os.fsencode(tmp_path / "n"), -1, 300, False, None),
    ]
    results, buf, made = file_workers.store_batch(files)
    assert results[0][0] is None and results[0][1] is not None
    assert results[0][1][0] == 2  # ENOENT, reported, not raised
    assert results[1] == ([(known, 5)], None, -1, None)
    assert results[2] == results[3] == ([(repo.blob_id(b"new" * 100), 300)], None, -1, None)
    assert len(made) == 1  # the known blob and the repeat were not sealed again
    blob_id, start, stored, raw = made[0]
    plain = repo.decode_blob(blob_id, 0, buf[start : start + stored], "test")
    assert plain == b"new" * 100 and raw == 300


def test_a_file_that_vanishes_is_an_error_not_a_node(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "keep").write_bytes(b"kept")
    (src / "lost").write_bytes(b"lost")
    repo = _repo()
    workers = file_workers.ContentWorkers.start(repo, 1)
    assert workers is not None
    arch = archiver._Archiver(repo, archiver.FileSystem(), Excludes(()), False, _meter(), workers)
    pd = arch.walk_dir(os.fsencode(src), b"", 0, None)
    os.unlink(src / "lost")  # between stat and the worker's read
    arch.drain()
    workers.close()
    arch.batcher.close()
    assert [e.path for e in arch.errors] == [str(src / "lost")]
    assert pd.tree_id is not None
    tree = decode_tree(repo.get_blob(bytes.fromhex(archiver._hex(pd.tree_id))), "root")
    assert [n.name for n in tree] == [b"keep"]
    assert tree[0].size == 4 and tree[0].content[0][1] == 4


def _meter() -> Any:
    from snowvault.core.clock import SystemClock
    from snowvault.engine.progress import ProgressMeter

    return ProgressMeter("backup", None, SystemClock())
