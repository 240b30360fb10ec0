"""What a backup with a parent may take from it instead of the file system: the xattrs
and link targets of entries whose inode and ctime are unchanged, and the tree id of a
directory whose entries are all unchanged (without encoding it).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from snowvault.engine import archiver, restorer
from snowvault.engine.tree import decode_tree
from snowvault.testing import FakeRepository

from .test_archiver_roundtrip import NOW, real_repo


@pytest.fixture(params=["fake", "real"])
def repo(request: pytest.FixtureRequest) -> Any:
    return FakeRepository() if request.param == "fake" else real_repo()


class XattrFS(archiver.FileSystem):
    """Xattrs from a dict (whatever the file system supports); counts the calls that
    read metadata a rerun may skip."""

    def __init__(self, xattrs: dict[bytes, tuple[tuple[bytes, bytes], ...]]) -> None:
        self.table = xattrs
        self.listed: list[bytes] = []
        self.links: list[bytes] = []

    def xattrs(self, path: bytes) -> tuple[tuple[bytes, bytes], ...]:
        self.listed.append(os.path.basename(path))
        return self.table.get(os.path.basename(path), ())

    def readlink(self, path: bytes) -> bytes:
        self.links.append(os.path.basename(path))
        return super().readlink(path)


def source(root: Path) -> None:
    (root / "sub").mkdir(parents=True)
    (root / "a.txt").write_bytes(b"a")
    (root / "sub" / "b.txt").write_bytes(b"b")
    os.symlink("a.txt", root / "link")


def node(repo: Any, tree: str, *names: bytes) -> Any:
    for name in names:
        by_name = {n.name: n for n in decode_tree(repo.get_blob(bytes.fromhex(tree)))}
        found = by_name[name]
        tree = found.subtree or ""
    return found


def test_an_unchanged_rerun_lists_no_xattrs_reads_no_links_and_encodes_no_tree(
    tmp_path: Path, repo: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    source(tmp_path / "src")
    fs = XattrFS({b"a.txt": ((b"user.k", b"v1"),)})
    first = archiver.backup_paths(repo, [tmp_path / "src"], now=NOW, fs=fs)
    assert sorted(fs.listed) == [b"a.txt", b"b.txt", b"link", b"src", b"sub"]
    assert fs.links == [b"link"]
    encoded: list[int] = []
    real_encode = archiver.encode_tree

    def counting_encode(nodes: Any) -> bytes:
        encoded.append(len(nodes))
        return real_encode(nodes)

    monkeypatch.setattr(archiver, "encode_tree", counting_encode)
    fs.listed.clear()
    fs.links.clear()
    again = archiver.backup_paths(repo, [tmp_path / "src"], now=NOW, parent=first.rp_id, fs=fs)
    assert (fs.listed, fs.links, encoded) == ([b"src"], [], [])  # the root's own: every run
    assert again.manifest.tree == first.manifest.tree
    assert node(repo, again.manifest.tree, b"a.txt").xattrs == ((b"user.k", b"v1"),)


def test_an_xattr_changed_with_its_ctime_is_backed_up(tmp_path: Path, repo: Any) -> None:
    source(tmp_path / "src")
    fs = XattrFS({b"b.txt": ((b"user.k", b"v1"),)})
    first = archiver.backup_paths(repo, [tmp_path / "src"], now=NOW, fs=fs)
    fs.table[b"b.txt"] = ((b"user.k", b"v2"),)
    os.chmod(tmp_path / "src" / "sub" / "b.txt", 0o644)  # what setxattr does to ctime
    second = archiver.backup_paths(repo, [tmp_path / "src"], now=NOW, parent=first.rp_id, fs=fs)
    assert fs.listed[-2:] == [b"b.txt", b"src"]  # the entry whose ctime moved, and the root
    assert second.manifest.tree != first.manifest.tree
    assert node(repo, second.manifest.tree, b"sub", b"b.txt").xattrs == ((b"user.k", b"v2"),)
    assert node(repo, second.manifest.tree, b"a.txt") == node(repo, first.manifest.tree, b"a.txt")


def test_setting_an_xattr_moves_ctime(tmp_path: Path) -> None:
    """The kernel behaviour the reuse relies on (on a file system without user xattrs
    there is nothing a rerun could miss)."""
    path = tmp_path / "f"
    path.write_bytes(b"x")
    before = os.lstat(path).st_ctime_ns
    tick = tmp_path / "tick"
    for _ in range(1_000_000):  # until the file system's clock has moved on
        tick.write_bytes(b"")
        if os.lstat(tick).st_ctime_ns > before:
            break
    try:
        os.setxattr(path, "user.k", b"v")
    except OSError:
        return
    assert os.lstat(path).st_ctime_ns > before


def test_a_mode_change_gives_a_new_tree_and_is_restored(tmp_path: Path, repo: Any) -> None:
    source(tmp_path / "src")
    first = archiver.backup_paths(repo, [tmp_path / "src"], now=NOW)
    os.chmod(tmp_path / "src" / "sub" / "b.txt", 0o600)
    second = archiver.backup_paths(repo, [tmp_path / "src"], now=NOW, parent=first.rp_id)
    assert node(repo, second.manifest.tree, b"sub").subtree != (
        node(repo, first.manifest.tree, b"sub").subtree
    )
    restorer.restore(repo, second.rp_id, tmp_path / "out")
    assert os.lstat(tmp_path / "out" / "sub" / "b.txt").st_mode & 0o777 == 0o600
