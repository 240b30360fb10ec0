"""Concurrent writers and the lock protocol, with real ``snowvault repo`` processes.

Two backups of the same data that run at the same moment both store every blob (neither
knew of the other's packs): both must succeed and restore, and prune afterwards must
drop the duplicate copies. Prune refuses while a live backup lock exists; a backup
refuses while prune's exclusive lock exists; locks of dead local processes and locks
older than 30 minutes are stale and block nothing. The locks the CLI must respect are
taken with the real engine.locks against the real (system) clock, since the child
processes read that clock too.
"""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import time
from datetime import timedelta
from pathlib import Path

import pytest

from helpers.engine_cli import CLI, PASSWORD, Cli, assert_clean_error, last_json, make_small_repo
from snowvault.core.clock import SystemClock
from snowvault.engine import check, locks, prune
from snowvault.engine.backends.local import LocalBackend
from snowvault.engine.backends.memory import MemoryBackend
from snowvault.engine.crypto import KdfParams
from snowvault.engine.repository import Repository
from snowvault.testing import FakeClock

CLOCK = SystemClock()


def _wait_for(predicate: object, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.02)


def _entries_per_blob(repo: Repository) -> dict[bytes, int]:
    """How many packs hold each blob, over every index segment not superseded."""
    count: dict[bytes, int] = {}
    segments = {n: repo.read_segment(n) for n in repo.index_segments()}
    superseded = {f"index/{s}" for seg in segments.values() for s in seg.supersedes}
    for name, seg in segments.items():
        if name not in superseded:
            for entries in seg.packs.values():
                for e in entries:
                    count[e.blob_id] = count.get(e.blob_id, 0) + 1
    return count


def test_two_backup_processes_at_once_both_succeed_and_prune_drops_duplicates(
    cli: Cli, tmp_path: Path
) -> None:
    repo = make_small_repo(tmp_path / "repo")
    data = random.Random(7).randbytes(3 * 1024 * 1024)
    procs = [
        subprocess.Popen(
            [*CLI, "repo", "backup", "--repo", repo, "--stdin", f"s{i}.bin", "--json"],
            cwd=cli.cwd,
            env=cli.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for i in range(2)
    ]
    try:
        # both have opened the repository (loaded its empty index) and hold their shared
        # locks before either reads a byte: their writes must overlap completely
        _wait_for(lambda: len(list((tmp_path / "repo" / "locks").glob("*"))) == 2)
        outs = [p.communicate(data, timeout=120) for p in procs]
    finally:
        for p in procs:
            p.kill()
            p.wait()
    assert [p.returncode for p in procs] == [0, 0], [o[1] for o in outs]
    ids = [last_json(o[0].decode())["id"] for o in outs]
    assert len(set(ids)) == 2
    assert list((tmp_path / "repo" / "locks").iterdir()) == []

    with Repository.open(LocalBackend(repo), password=PASSWORD) as opened:
        copies = _entries_per_blob(opened)
    assert max(copies.values()) == 2, "the two backups did not overlap: no duplicate to prune"

    before = cli.json("repo", "stats", "--repo", repo)
    assert cli.json("repo", "check", "--repo", repo, "--read-data")["ok"] is True
    for i, rp_id in enumerate(ids):
        cli.run("repo", "restore", "--repo", repo, rp_id, str(tmp_path / f"t{i}"), "--json")
        assert (tmp_path / f"t{i}" / f"s{i}.bin").read_bytes() == data

    pruned = cli.json("repo", "prune", "--repo", repo)
    assert pruned["packs_deleted"] + pruned["packs_repacked"] > 0
    after = cli.json("repo", "stats", "--repo", repo)
    assert after["stored_bytes"] < before["stored_bytes"] * 0.55
    assert after["blobs"] == before["blobs"]  # unique blobs: none lost
    with Repository.open(LocalBackend(repo), password=PASSWORD) as opened:
        left = [n for n in _entries_per_blob(opened).values() if n > 1]
        # a pack that is at most 20% duplicates is kept whole (the repack threshold), so a
        # few copies may stay; the bulk (each pack of the loser) is gone
        assert len(left) <= len(copies) // 20
        report = check.check(opened, read_data=True)
        assert report.ok and report.warnings == [], report
    cli.run("repo", "restore", "--repo", repo, ids[1], str(tmp_path / "again"), "--json")
    assert (tmp_path / "again" / "s1.bin").read_bytes() == data


def test_prune_refuses_while_a_backup_holds_its_lock(cli: Cli, tmp_path: Path) -> None:
    repo = make_small_repo(tmp_path / "repo")
    backend = LocalBackend(repo)
    held = locks.Lock(backend, CLOCK, exclusive=False)
    held.acquire()
    try:
        refused = cli.run("repo", "prune", "--repo", repo, expect=5)
        assert_clean_error(refused, "repository is locked", f"pid {os.getpid()}")
    finally:
        held.release()
    assert cli.json("repo", "prune", "--repo", repo)["dry_run"] is False
    assert list((tmp_path / "repo" / "locks").iterdir()) == []


def test_backup_refuses_while_prune_holds_the_exclusive_lock(cli: Cli, tmp_path: Path) -> None:
    repo = make_small_repo(tmp_path / "repo")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "f").write_bytes(b"x" * 1000)
    with locks.locked(LocalBackend(repo), CLOCK, exclusive=True):
        refused = cli.run("repo", "backup", "--repo", repo, str(tmp_path / "src"), expect=5)
        assert_clean_error(refused, "an exclusive lock is held")
    assert not list((tmp_path / "repo").glob("recovery-points/*"))
    assert cli.backup(repo, str(tmp_path / "src"))["files_new"] == 1


# ---------------------------------------------------------------- staleness (Python API)


def _write_lock(backend: MemoryBackend, name: str, **doc: object) -> None:
    backend.put(f"locks/{name}", json.dumps(doc).encode())


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


@pytest.mark.parametrize(
    ("who", "age_minutes", "blocks"),
    [
        ("other-host", 1, True),
        ("other-host", 31, False),
        ("this-host-alive", 1, True),
        ("this-host-dead", 1, False),
    ],
)
def test_which_shared_locks_block_prune(
    who: str, age_minutes: int, blocks: bool, clock: FakeClock
) -> None:
    backend = MemoryBackend()
    repo = Repository.init(backend, password=PASSWORD, kdf=KdfParams.for_tests())
    host = "elsewhere.example" if who == "other-host" else socket.gethostname()
    pid = _dead_pid() if who == "this-host-dead" else os.getpid()
    when = clock.now() - timedelta(minutes=age_minutes)
    _write_lock(backend, "ab" * 16, exclusive=False, time=when.isoformat(), host=host, pid=pid)
    if blocks:
        with pytest.raises(locks.RepositoryLocked, match=f"{host} pid {pid}"):
            prune.prune(repo, clock)
    else:
        assert prune.prune(repo, clock).recovery_points == 0
    repo.close()


def test_an_unreadable_lock_object_blocks_nothing(clock: FakeClock) -> None:
    backend = MemoryBackend()
    backend.put("locks/" + "cd" * 16, b"\x00not json")
    _write_lock(backend, "ef" * 16, exclusive=True, time="2026-01-01T00:00:00", host="h", pid=1)
    with locks.locked(backend, clock, exclusive=True) as lock:
        assert lock.name.startswith("locks/")
