"""A rerun on a local repository reads its parent trees through the restore's pack reads
(archiver._ParentTrees: pack files kept open), not one ``get`` of a pack each; the same
trees, and a pack that cannot be read costs a full read, never a failed backup."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from snowvault.engine import archiver
from snowvault.engine.backends.local import LocalBackend
from snowvault.engine.crypto import KdfParams
from snowvault.engine.repository import Repository
from snowvault.engine.snapshots import BackupResult

from .test_archiver_roundtrip import NOW


def _source(root: Path) -> int:
    files = 0
    for d in range(6):
        sub = root / f"d{d}" / "inner"
        sub.mkdir(parents=True)
        for f in range(4):
            (sub / f"f{f}.txt").write_bytes(b"x" * (d * 10 + f))
            (root / f"d{d}" / f"g{f}.txt").write_bytes(b"y" * (d + f))
            files += 2
    return files


def _backed_up(tmp_path: Path) -> tuple[int, Repository, BackupResult]:
    """(files in the source, its repository, the first backup)."""
    files = _source(tmp_path / "src")
    repo = Repository.init(
        LocalBackend(str(tmp_path / "repo")), password="pw", kdf=KdfParams.for_tests()
    )
    return files, repo, archiver.backup_paths(repo, [str(tmp_path / "src")], now=NOW)


def test_a_rerun_reads_no_pack_through_get_and_keeps_every_tree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files, repo, first = _backed_up(tmp_path)
    gets: list[str] = []
    real_get = LocalBackend.get

    def get(self: LocalBackend, name: str, *args: Any, **kwargs: Any) -> bytes:
        gets.append(name)
        return real_get(self, name, *args, **kwargs)

    monkeypatch.setattr(LocalBackend, "get", get)
    opens: list[str] = []
    real_open = os.open

    def counting_open(path: Any, *args: Any, **kwargs: Any) -> int:
        opens.append(os.fsdecode(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", counting_open)
    again = archiver.backup_paths(repo, [str(tmp_path / "src")], now=NOW, parent=first.rp_id)
    assert again.manifest.summary.files_unchanged == files
    assert again.manifest.tree == first.manifest.tree
    assert not [name for name in gets if name.startswith("data/")]
    pack_opens = [p for p in opens if os.sep + "data" + os.sep in p]
    assert len(pack_opens) == 1  # 13 trees, one pack, opened once
    repo.close()


def test_an_unreadable_tree_pack_costs_a_full_read_not_the_backup(tmp_path: Path) -> None:
    files, repo, first = _backed_up(tmp_path)
    repo.close()
    for pack in (tmp_path / "repo" / "data").rglob("*"):
        if pack.is_file():
            pack.write_bytes(pack.read_bytes()[:10])  # every pack cut short
    repo = Repository.open(LocalBackend(str(tmp_path / "repo")), password="pw")
    again = archiver.backup_paths(repo, [str(tmp_path / "src")], now=NOW, parent=first.rp_id)
    assert again.manifest.summary.files_unchanged == 0
    assert again.manifest.summary.files_new + again.manifest.summary.files_changed == files
    repo.close()


def test_a_pack_read_the_system_refuses_is_read_again_by_get_blob(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files, repo, first = _backed_up(tmp_path)

    def refused(*args: Any, **kwargs: Any) -> int:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "preadv", refused)
    again = archiver.backup_paths(repo, [str(tmp_path / "src")], now=NOW, parent=first.rp_id)
    assert again.manifest.summary.files_unchanged == files  # every tree read by get_blob
    assert again.manifest.tree == first.manifest.tree
    repo.close()
