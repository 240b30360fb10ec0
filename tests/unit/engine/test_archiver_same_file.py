"""The rerun's quick check for an unchanged file (``_Archiver._same_file``) says exactly
what the general check (``_unchanged_raw``) says, field by field, and a rerun counts and
reports unchanged files as the general path did."""

from __future__ import annotations

import os
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from snowvault.engine import archiver
from snowvault.engine.excludes import Excludes
from snowvault.engine.progress import Progress, ProgressMeter
from snowvault.engine.tree import node_to_dict
from snowvault.testing import FakeClock, FakeRepository

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)

FIELDS: dict[str, list[Any]] = {
    "type": ["dir", "symlink", "fifo"],
    "ctime_ns": [1],
    "mtime_ns": [2],
    "inode": [3],
    "size": [4],
    "mode": [0o600, 0o4755],
    "uid": [12345],
    "gid": [12345],
    "device": [6],
    "nlink": [2, 7],
    "rdev": [9],
    "user": ["someone-else", None],
    "group": ["another-group", None],
    "extra": [{"future": 1}],
}


def _arch() -> archiver._Archiver:
    meter = ProgressMeter("backup", None, FakeClock())
    return archiver._Archiver(FakeRepository(), archiver.FileSystem(), Excludes([]), False, meter)


def test_the_quick_check_agrees_with_the_general_one_on_every_field(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x" * 100)
    st = os.lstat(path)
    arch = _arch()
    same = node_to_dict(arch.make_node(os.fsencode(path), b"f", "file", st))
    assert arch._unchanged_raw(same, "file", st) and arch._same_file(same, st)
    rng = random.Random(20261207)
    tried = 0
    for name, values in FIELDS.items():
        for value in values:
            raw = dict(same)
            raw[name] = value
            tried += 1
            assert arch._same_file(raw, st) == arch._unchanged_raw(raw, "file", st), name
            assert not arch._same_file(raw, st), name
        raw = dict(same)
        if name in raw:
            del raw[name]  # left out: its default, which must differ unless st has it
            assert arch._same_file(raw, st) == arch._unchanged_raw(raw, "file", st), name
    for _ in range(200):  # several fields at once
        raw = dict(same)
        for name in rng.sample(sorted(FIELDS), 2):
            raw[name] = rng.choice(FIELDS[name])
        assert arch._same_file(raw, st) == arch._unchanged_raw(raw, "file", st)
    assert tried == sum(len(v) for v in FIELDS.values())
    # not a regular file on disk: never the quick path
    assert not arch._same_file(same, os.lstat(tmp_path))


def test_a_rerun_counts_and_reports_every_unchanged_file(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "d" / "e").mkdir(parents=True)
    sizes = {}
    for i in range(30):
        folder = src if i % 3 == 0 else (src / "d" if i % 3 == 1 else src / "d" / "e")
        (folder / f"f{i}").write_bytes(b"y" * i)
        sizes[f"f{i}"] = i
    repo: Any = FakeRepository()
    first = archiver.backup_paths(repo, [src], now=NOW, walkers=0, processes=0)
    (src / "d" / "f1").write_bytes(b"changed")  # one changed file among unchanged ones
    reports: list[Progress] = []
    second = archiver.backup_paths(
        repo,
        [src],
        now=NOW,
        parent=first.rp_id,
        walkers=0,
        processes=0,
        progress=reports.append,
        clock=FakeClock(),
    )
    summary = second.manifest.summary
    assert summary.files_unchanged == 29
    assert summary.files_changed == 1
    assert summary.dirs == 2
    assert summary.total_size == sum(sizes.values()) - 1 + len(b"changed")
    last = reports[-1]
    assert last.files_done == 30  # directories are counted, not reported as files
    third = archiver.backup_paths(repo, [src], now=NOW, parent=second.rp_id, walkers=0)
    assert third.manifest.tree == second.manifest.tree
    assert third.manifest.summary.files_unchanged == 30
