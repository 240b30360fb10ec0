"""A small file's xattrs come with its read on a batch thread, through the descriptor the
read opens (opened by name in its directory's descriptor), not by a listing of its path
on the walk's thread; a file system that overrides the read or the xattrs still gets
both called, so faults injected there still happen."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from snowvault.engine import archiver, small_files
from snowvault.engine.tree import decode_tree

from .test_archiver_roundtrip import NOW, real_repo, xattrs_supported


def _source(root: Path) -> None:
    for sub in ("a", "b"):
        (root / sub).mkdir(parents=True)
        for i in range(3):
            f = root / sub / f"f{i}.txt"
            f.write_bytes(f"{sub}{i}".encode())
            os.setxattr(f, "user.k", f"{sub}{i}".encode())
    os.setxattr(root / "a", "user.dir", b"d")


def _nodes(repo: Any, tree_id: str) -> dict[bytes, Any]:
    out = {}
    for node in decode_tree(repo.get_blob(bytes.fromhex(tree_id))):
        out[node.name] = node
        if node.subtree is not None:
            for name, child in _nodes(repo, node.subtree).items():
                out[node.name + b"/" + name] = child
    return out


def test_small_files_get_their_xattrs_through_their_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not xattrs_supported(tmp_path):
        pytest.skip("no user xattrs here")
    src = tmp_path / "src"
    _source(src)
    listed: list[Any] = []
    listxattr = os.listxattr

    def spy(where: Any, *args: Any, **kwargs: Any) -> list[str]:
        listed.append(where)
        return listxattr(where, *args, **kwargs)

    monkeypatch.setattr(os, "listxattr", spy)
    repo = real_repo()
    result = archiver.backup_paths(repo, [src], now=NOW, walkers=0, processes=0)
    nodes = _nodes(repo, result.manifest.tree)
    for sub in ("a", "b"):
        for i in range(3):
            assert nodes[f"{sub}/f{i}.txt".encode()].xattrs == ((b"user.k", f"{sub}{i}".encode()),)
    assert nodes[b"a"].xattrs == ((b"user.dir", b"d"),)
    # the files by descriptor, the directories by path (and nothing listed twice)
    assert sorted(type(w).__name__ for w in listed) == ["bytes"] * 3 + ["int"] * 6


class _Faulty(archiver.FileSystem):
    """Refuses the xattrs of one file: the seam tests use to inject faults."""

    def xattrs(self, path: bytes) -> archiver.Xattrs:
        if path.endswith(b"f1.txt"):
            raise OSError(5, "Input/output error")
        return super().xattrs(path)


def test_an_overridden_xattrs_is_still_called_for_small_files(tmp_path: Path) -> None:
    if not xattrs_supported(tmp_path):
        pytest.skip("no user xattrs here")
    src = tmp_path / "src"
    _source(src)
    repo = real_repo()
    result = archiver.backup_paths(repo, [src], now=NOW, fs=_Faulty())
    errors = sorted(e.path for e in result.manifest.errors)
    assert [p.rsplit("/", 2)[-2:] for p in errors] == [["a", "f1.txt"], ["b", "f1.txt"]]
    assert result.manifest.partial and result.manifest.summary.files_new == 4


def test_a_batch_reads_each_directory_through_one_descriptor(tmp_path: Path) -> None:
    """Files of two directories, one of them gone before the read: the gone one's files
    are read by path (their error is the path's), the others by name."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for d in ("a", "b"):
        (tmp_path / d / "x").write_bytes(d.encode() * 3)
    opened: list[tuple[bytes, int | None]] = []

    class Reader:
        def read_small(self, path: bytes, size: int) -> bytes:
            raise AssertionError("read with its xattrs")

        def read_small_xattrs(
            self, path: bytes, size: int, dir_fd: int | None = None
        ) -> tuple[bytes, Any]:
            opened.append((path, dir_fd))
            return archiver.FileSystem().read_small_xattrs(path, size, dir_fd)

    class Store:
        def add_blob(self, kind: Any, data: bytes | memoryview) -> bytes:
            return bytes(data)

    paths = [os.fsencode(tmp_path / d / "x") for d in ("a", "a", "b", "gone", "b")]
    small = small_files.SmallFiles(Store(), workers=1, hint=None)
    refs = [small.add_file(Reader(), p, 3, False, xattrs=True) for p in paths]
    small.close()
    outcomes = [r.outcome() for r in refs]
    assert outcomes[0] == outcomes[1] == (b"aaa", 3, ())
    assert outcomes[2] == outcomes[4] == (b"bbb", 3, ())
    assert isinstance(outcomes[3], FileNotFoundError)
    fds = [fd for _, fd in opened]
    assert fds[0] is not None and fds[3] is None and fds[2] is not None
