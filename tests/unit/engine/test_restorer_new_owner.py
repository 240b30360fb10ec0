"""A restore as root gives every file its owner, but a streamed restore (every directory
made by it) skips the fchown of a file the kernel already created with that owner --
read from the first directory it made: the effective uid, and the effective gid or a
set-group-ID target's group -- one system call per file. A planned restore (directories
that may have been there) always chowns."""

from __future__ import annotations

import os
import stat
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from snowvault.engine import archiver, restorer
from snowvault.engine.progress import ProgressMeter
from snowvault.engine.tree import Node
from snowvault.testing import FakeClock, FakeRepository

NOW = datetime(2026, 3, 4, tzinfo=UTC)
FILES = {"a.txt": b"a" * 3000, "d/b.txt": b"b" * 10, "d/e/c.txt": b"c" * 20}


def _point(tmp_path: Path) -> tuple[FakeRepository, str, Path]:
    src = tmp_path / "src"
    for rel, body in FILES.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(body)
    repo = FakeRepository()
    return repo, archiver.backup_paths(repo, [src], now=NOW).rp_id, src


def _as_root(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """The restore believes it runs as root; its chown calls are recorded, not made."""
    calls: list[tuple[int, int]] = []
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(os, "fchown", lambda fd, uid, gid: calls.append((uid, gid)))
    monkeypatch.setattr(os, "chown", lambda *args, **kwargs: None)  # directories
    return calls


def test_a_streamed_restore_chowns_exactly_the_files_created_with_another_owner(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, rp, src = _point(tmp_path)
    owners = [(st.st_uid, st.st_gid) for st in (os.lstat(src / rel) for rel in FILES)]
    euid = os.geteuid()
    calls = _as_root(monkeypatch)
    result = restorer.restore(repo, rp, tmp_path / "out")  # new: streamed
    assert result.errors == [] and result.files == len(FILES)
    made = os.stat(tmp_path / "out" / "d")  # as created: its chown was not made
    assert (made.st_uid, made.st_gid) == (euid, os.getegid())
    # only files whose owner differs from what the kernel gave them are chowned
    assert sorted(calls) == sorted(o for o in owners if o != (made.st_uid, made.st_gid))
    for rel, body in FILES.items():
        assert (tmp_path / "out" / rel).read_bytes() == body


def test_a_planned_restore_chowns_every_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, rp, _ = _point(tmp_path)
    out = tmp_path / "out"
    (out / "d").mkdir(parents=True)  # not empty: planned, its directories may be old
    calls = _as_root(monkeypatch)
    result = restorer.restore(repo, rp, out)
    assert result.errors == []
    assert len(calls) == len(FILES)


def _restorer(tmp_path: Path) -> restorer._Restorer:
    meter = ProgressMeter("restore", None, FakeClock(NOW))
    return restorer._Restorer(FakeRepository(), os.fsencode(tmp_path), False, meter)


def test_set_meta_skips_fchown_only_for_the_new_owner(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    r = _restorer(tmp_path)
    r.is_root = True
    r.new_owner = (5, 6)
    calls = _as_root(monkeypatch)
    same = Node(name=b"f", type="file", mode=0o644, uid=5, gid=6, mtime_ns=10**18)
    path = tmp_path / "f"
    with open(path, "wb") as fh:
        for node in (same, replace(same, uid=7), replace(same, gid=8), same):
            r.set_meta(os.fsencode(path), node, fd=fh.fileno())
    assert calls == [(7, 6), (5, 8)]
    assert os.stat(path).st_mtime_ns == 10**18


def test_a_directory_found_already_there_turns_the_skip_off(tmp_path: Path) -> None:
    r = _restorer(tmp_path)
    r.new_owner = (5, 6)
    r.make_dir(b"made", fresh=True)
    assert r.new_owner == (5, 6)
    (tmp_path / "there").mkdir()
    r.make_dir(b"there", fresh=True)
    assert r.new_owner is None


def test_the_owner_is_learned_from_the_first_directory_made(tmp_path: Path) -> None:
    """Below a set-group-ID target a new directory, and so every file, gets the
    target's group (as root: a group this process is not in), not the effective gid."""
    target = tmp_path / "shared"
    target.mkdir()
    if os.geteuid() == 0:
        os.chown(target, -1, os.getegid() + 4321)
    os.chmod(target, 0o2775)
    r = _restorer(target)
    r.learn_owner = True
    r.make_dir(b"d", fresh=True)
    assert os.stat(target).st_mode & stat.S_ISGID
    assert r.new_owner == (os.geteuid(), os.stat(target).st_gid)
    assert r.learn_owner is False
    r.make_dir(b"d/e", fresh=True)
    assert r.new_owner == (os.geteuid(), os.stat(target).st_gid)
