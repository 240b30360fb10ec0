"""ls and diff over recovery points."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from snowvault.core import errors
from snowvault.engine import archiver, browse
from snowvault.testing import FakeRepository

NOW = datetime(2026, 3, 4, tzinfo=UTC)


def make(src: Path) -> None:
    (src / "d" / "e").mkdir(parents=True)
    (src / "f.txt").write_bytes(b"12345")
    (src / "d" / "g").write_bytes(b"g")
    (src / "d" / "e" / "h").write_bytes(b"h")
    os.utime(src / "f.txt", ns=(1_700_000_000_500_000_000,) * 2)


def test_ls_lists_one_directory_or_everything(tmp_path: Path) -> None:
    make(tmp_path / "s")
    repo = FakeRepository()
    rp = archiver.backup_paths(repo, [tmp_path / "s"], now=NOW).rp_id
    top = browse.ls(repo, rp)
    assert [(e.path, e.type) for e in top] == [("/d", "dir"), ("/f.txt", "file")]
    f = top[1]
    assert f.size == 5 and f.mtime == datetime(2023, 11, 14, 22, 13, 20, 500000, tzinfo=UTC)
    assert [e.path for e in browse.ls(repo, rp, "/d", recursive=True)] == [
        "/d/e",
        "/d/e/h",
        "/d/g",
    ]
    assert [e.path for e in browse.ls(repo, rp, "d/g")] == ["/d/g"]
    with pytest.raises(errors.NotFound):
        browse.ls(repo, rp, "/nope")


def test_diff_reports_added_removed_modified_and_type_changes(tmp_path: Path) -> None:
    src = tmp_path / "s"
    make(src)
    repo = FakeRepository()
    a = archiver.backup_paths(repo, [src], now=NOW).rp_id
    (src / "f.txt").write_bytes(b"changed")
    (src / "d" / "g").unlink()
    (src / "d" / "g").mkdir()
    (src / "new").write_bytes(b"n")
    os.unlink(src / "d" / "e" / "h")
    b = archiver.backup_paths(repo, [src], now=NOW, parent=a).rp_id
    changes = [(c.kind, c.path) for c in browse.diff(repo, a, b)]
    assert changes == [("-", "/d/e/h"), ("T", "/d/g"), ("M", "/f.txt"), ("+", "/new")]
    assert browse.diff(repo, a, a) == []
