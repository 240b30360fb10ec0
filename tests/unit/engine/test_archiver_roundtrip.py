"""Back up a tree holding every kind of entry, restore it, compare entry by entry.

Runs against the dict-backed fake and the real Repository on a MemoryBackend.
"""

from __future__ import annotations

import io
import os
import random
import stat
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from snowvault.engine import archiver, restorer
from snowvault.engine.backends.memory import MemoryBackend
from snowvault.engine.crypto import KdfParams
from snowvault.engine.repository import Repository
from snowvault.testing import FakeRepository
from snowvault.testing.repository import SMALL_CHUNKS

NOW = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


def real_repo() -> Repository:
    return Repository.init(
        MemoryBackend(), password="pw", kdf=KdfParams.for_tests(), chunker=SMALL_CHUNKS
    )


REPOS: dict[str, Callable[[], Any]] = {"fake": FakeRepository, "real": real_repo}


@pytest.fixture(params=sorted(REPOS))
def repo(request: pytest.FixtureRequest) -> Any:
    return REPOS[request.param]()


def xattrs_supported(path: Path) -> bool:
    probe = path / ".xattr-probe"
    probe.write_bytes(b"")
    try:
        os.setxattr(probe, "user.probe", b"1")
        return True
    except OSError:
        return False
    finally:
        probe.unlink()


def build_source(root: Path) -> None:
    """Every entry type the archiver knows, with odd modes and nanosecond times."""
    rng = random.Random(42)
    root.mkdir()
    (root / "empty").write_bytes(b"")
    (root / "small.txt").write_bytes(b"hello world\n")
    (root / "big.bin").write_bytes(rng.randbytes(300_000))  # many 4-32 KiB chunks
    with open(root / "sparse.img", "wb") as f:
        f.write(b"head")
        f.seek(1_000_000)
        f.write(b"tail")
        f.truncate(2_000_000)
    nested = root / "d1" / "d2" / "d3"
    nested.mkdir(parents=True)
    (nested / "deep.txt").write_bytes(b"deep")
    (root / "d1" / "odd_mode").write_bytes(b"x")
    os.chmod(root / "d1" / "odd_mode", 0o4751)
    os.chmod(root / "d1" / "d2", 0o750)
    os.symlink("/etc/hostname", root / "abs_link")
    os.symlink("d1/d2/d3/deep.txt", root / "rel_link")
    os.symlink("nowhere/at/all", root / "dangling")
    (root / "hard_a").write_bytes(b"linked content")
    os.link(root / "hard_a", root / "d1" / "hard_b")
    os.link(root / "hard_a", root / "hard_c")
    os.mkfifo(root / "fifo")
    os.mknod(root / "null_dev", stat.S_IFCHR | 0o640, os.makedev(1, 3))
    (root / b"caf\xe9-latin1".decode("utf-8", "surrogateescape")).write_bytes(b"non-utf8 name")
    (root / "unicodé ☃").write_bytes(b"utf8 name")
    os.chown(root / "small.txt", 1234, 5678)
    if xattrs_supported(root):
        os.setxattr(root / "small.txt", "user.comment", b"\x00binary\xff")
        os.setxattr(root / "d1", "user.dir", b"on a dir")
    times = [(root / p) for p in ("small.txt", "big.bin", "d1/d2/d3/deep.txt", "d1")]
    for i, p in enumerate(times):
        ns = 1_700_000_000_123_456_789 + i * 1_000_000_007
        os.utime(p, ns=(ns, ns))
    os.utime(root / "abs_link", ns=(1_600_000_000_000_000_001,) * 2, follow_symlinks=False)


def snapshot_tree(root: Path) -> dict[bytes, dict[str, Any]]:
    """Everything restore must reproduce, keyed by raw relative path."""
    out: dict[bytes, dict[str, Any]] = {}
    base = os.fsencode(root)
    inodes: dict[int, bytes] = {}
    for dirpath, dirnames, filenames in os.walk(base):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, base)
            st = os.lstat(full)
            info: dict[str, Any] = {
                "mode": st.st_mode,
                "uid": st.st_uid,
                "gid": st.st_gid,
                "xattrs": _xattrs(full),
            }
            if not stat.S_ISDIR(st.st_mode):
                info["mtime_ns"] = st.st_mtime_ns
            else:
                info["mtime_ns"] = st.st_mtime_ns
            if stat.S_ISREG(st.st_mode):
                info["content"] = Path(os.fsdecode(full)).read_bytes()
                info["link_group"] = inodes.setdefault(st.st_ino, rel)
            if stat.S_ISLNK(st.st_mode):
                info["target"] = os.readlink(full)
            if stat.S_ISCHR(st.st_mode):
                info["rdev"] = st.st_rdev
            out[rel] = info
    return out


def _xattrs(path: bytes) -> dict[str, bytes]:
    try:
        return {
            n: os.getxattr(path, n, follow_symlinks=False)
            for n in os.listxattr(path, follow_symlinks=False)
        }
    except OSError:
        return {}


def test_every_entry_type_round_trips(tmp_path: Path, repo: Any) -> None:
    src = tmp_path / "src"
    build_source(src)
    before = snapshot_tree(src)
    result = archiver.backup_paths(repo, [src], now=NOW, hostname="h")
    assert not result.manifest.partial
    dst = tmp_path / "dst"
    restored = restorer.restore(repo, result.rp_id, dst)
    assert restored.errors == [] and restored.skipped == []
    after = snapshot_tree(dst)
    assert sorted(after) == sorted(before)
    for rel in before:
        assert after[rel] == before[rel], rel
    # hard links restored as links, sparse file restored sparse
    assert os.stat(dst / "hard_a").st_ino == os.stat(dst / "d1" / "hard_b").st_ino
    assert os.stat(dst / "hard_a").st_nlink == 3
    sparse = os.stat(dst / "sparse.img")
    assert sparse.st_size == 2_000_000 and sparse.st_blocks * 512 < 200_000


def test_manifest_records_what_happened(tmp_path: Path, repo: Any) -> None:
    src = tmp_path / "src"
    build_source(src)
    result = archiver.backup_paths(repo, [src], now=NOW, hostname="h", tags={"k": "v"})
    doc = repo.load_manifest(result.rp_id)
    assert doc["time"] == "2026-03-04T05:06:07Z"
    assert doc["kind"] == "directory" and doc["tags"] == {"k": "v"} and doc["hostname"] == "h"
    assert doc["summary"]["files_new"] == 11  # regular files; each hard link path counts
    assert doc["summary"]["total_size"] == result.manifest.summary.total_size > 2_300_000
    assert doc["tree"] == result.manifest.tree


def test_several_paths_become_named_entries(tmp_path: Path, repo: Any) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "f").write_bytes(b"1")
    (tmp_path / "g.txt").write_bytes(b"2")
    result = archiver.backup_paths(repo, [tmp_path / "a", tmp_path / "g.txt"], now=NOW)
    restorer.restore(repo, result.rp_id, tmp_path / "out")
    assert (tmp_path / "out" / "a" / "f").read_bytes() == b"1"
    assert (tmp_path / "out" / "g.txt").read_bytes() == b"2"


def test_stream_backup_is_one_file(tmp_path: Path, repo: Any) -> None:
    payload = random.Random(3).randbytes(100_000) + bytes(50_000)
    result = archiver.backup_stream(repo, "dump.sql", io.BytesIO(payload), now=NOW, hostname="h")
    assert result.manifest.kind == "stream" and result.manifest.summary.total_size == 150_000
    restorer.restore(repo, result.rp_id, tmp_path / "out")
    assert (tmp_path / "out" / "dump.sql").read_bytes() == payload
    assert os.stat(tmp_path / "out" / "dump.sql").st_mtime_ns == int(NOW.timestamp()) * 10**9


def test_progress_is_reported_without_printing(
    tmp_path: Path, repo: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "src"
    build_source(src)
    seen: list[Any] = []
    archiver.backup_paths(repo, [src], now=NOW, progress=seen.append)
    assert seen and seen[-1].files_done >= 15 and seen[-1].bytes_done > 2_300_000
    assert capsys.readouterr().out == ""


# ---------------------------------------------------------------- seams: faults, spies


class SpyFS(archiver.FileSystem):
    """Counts file reads; fails reads of names in ``broken``; fakes a mount at ``mounts``."""

    def __init__(self, broken: set[bytes] = frozenset(), mounts: set[bytes] = frozenset()) -> None:  # type: ignore[assignment]
        self.reads: list[bytes] = []
        self.broken = broken
        self.mounts = mounts

    def read_small(self, path: bytes, size: int) -> bytes:
        self._read(path)
        return super().read_small(path, size)

    def chunks(self, path: bytes, chunker: Any) -> Any:
        self._read(path)
        return super().chunks(path, chunker)

    def _read(self, path: bytes) -> None:
        self.reads.append(os.path.basename(path))
        if os.path.basename(path) in self.broken:
            raise PermissionError(13, "Permission denied", path)

    def device(self, path: bytes, st: os.stat_result) -> int:
        return st.st_dev + 1 if os.path.basename(path) in self.mounts else st.st_dev


def simple_source(root: Path) -> None:
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "other").mkdir()
    (root / "a.txt").write_bytes(b"a" * 10)
    (root / "sub" / "b.bin").write_bytes(random.Random(1).randbytes(100_000))
    (root / "sub" / "deeper" / "c.txt").write_bytes(b"c")
    (root / "other" / "d.txt").write_bytes(b"d")


def test_unreadable_file_is_skipped_and_marks_partial(tmp_path: Path, repo: Any) -> None:
    simple_source(tmp_path / "src")
    seen: list[Any] = []
    fs = SpyFS(broken={b"b.bin"})
    result = archiver.backup_paths(repo, [tmp_path / "src"], now=NOW, fs=fs, progress=seen.append)
    assert result.manifest.partial
    [err] = result.manifest.errors
    assert err.path.endswith("src/sub/b.bin") and "Permission denied" in err.error
    assert any(p.errors == 1 for p in seen)
    assert repo.load_manifest(result.rp_id)["partial"] is True
    restorer.restore(repo, result.rp_id, tmp_path / "out")
    assert not (tmp_path / "out" / "sub" / "b.bin").exists()
    assert (tmp_path / "out" / "sub" / "deeper" / "c.txt").read_bytes() == b"c"


def test_one_file_system_keeps_the_mount_point_but_not_its_contents(
    tmp_path: Path, repo: Any
) -> None:
    simple_source(tmp_path / "src")
    fs = SpyFS(mounts={b"sub"})
    result = archiver.backup_paths(repo, [tmp_path / "src"], now=NOW, fs=fs, one_file_system=True)
    restorer.restore(repo, result.rp_id, tmp_path / "out")
    assert (tmp_path / "out" / "sub").is_dir()
    assert os.listdir(tmp_path / "out" / "sub") == []
    assert (tmp_path / "out" / "other" / "d.txt").exists()
    crossed = archiver.backup_paths(repo, [tmp_path / "src"], now=NOW, fs=SpyFS(mounts={b"sub"}))
    assert crossed.manifest.summary.files_new == 4


def test_incremental_reuses_unchanged_files_and_trees(tmp_path: Path, repo: Any) -> None:
    src = tmp_path / "src"
    simple_source(src)
    first = archiver.backup_paths(repo, [src], now=NOW)
    (src / "other" / "d.txt").write_bytes(b"changed")
    (src / "new.txt").write_bytes(b"new")
    spy = SpyFS()
    calls_before = dict(getattr(repo, "add_calls", {}))
    second = archiver.backup_paths(repo, [src], now=NOW, parent=first.rp_id, fs=spy)
    assert sorted(spy.reads) == [b"d.txt", b"new.txt"]
    s = second.manifest.summary
    assert (s.files_new, s.files_changed, s.files_unchanged) == (1, 1, 3)
    assert second.manifest.parent == first.rp_id
    if calls_before:  # the fake counts uploads: only the root and other/ trees are new
        assert repo.add_calls["tree"] - calls_before["tree"] == 2
        assert repo.add_calls["data"] - calls_before["data"] == 2
    restorer.restore(repo, second.rp_id, tmp_path / "out")
    assert (tmp_path / "out" / "sub" / "b.bin").read_bytes() == (src / "sub" / "b.bin").read_bytes()
    assert (tmp_path / "out" / "other" / "d.txt").read_bytes() == b"changed"


def test_unchanged_source_gives_the_same_tree(tmp_path: Path, repo: Any) -> None:
    src = tmp_path / "src"
    build_source(src)
    first = archiver.backup_paths(repo, [src], now=NOW)
    again = archiver.backup_paths(repo, [src], now=NOW, parent=first.rp_id)
    fresh = archiver.backup_paths(repo, [src], now=NOW)
    assert first.manifest.tree == again.manifest.tree == fresh.manifest.tree
    assert again.manifest.summary.bytes_read == 0


def test_excludes_skip_matching_entries(tmp_path: Path, repo: Any) -> None:
    src = tmp_path / "src"
    simple_source(src)
    (src / "x.log").write_bytes(b"log")
    (src / "sub" / "keep.log").write_bytes(b"keep")
    excludes = ["*.log", "!keep.log", "deeper/"]
    result = archiver.backup_paths(repo, [src], now=NOW, excludes=excludes)
    restorer.restore(repo, result.rp_id, tmp_path / "out")
    out = tmp_path / "out"
    assert not (out / "x.log").exists() and (out / "sub" / "keep.log").exists()
    assert not (out / "sub" / "deeper").exists() and (out / "a.txt").exists()
