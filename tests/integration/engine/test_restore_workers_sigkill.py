"""SIGKILL a CLI restore whose runs are written by worker processes
(SNOWVAULT_ENGINE_RESTORERS=2, engine/restore_workers.py) halfway: its workers die with
it (none is left writing into the target), and a retry with --overwrite completes the
target byte for byte, no temp file left over."""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

from helpers.engine_cli import Cli, cli_env, init_kill_repo, read_tree, write_tree

MiB = 1024 * 1024


def test_a_restore_with_workers_killed_halfway_leaves_no_worker_and_is_finished_by_a_retry(
    tmp_path: Path,
) -> None:
    src = tmp_path / "src"
    rng = random.Random(16)
    files = {
        f"d{i % 40:02d}/f{i:04d}.txt": rng.randbytes(rng.randrange(1, 6000)) for i in range(4000)
    }
    files.update({f"big/b{i}.bin": rng.randbytes(3 * MiB) for i in range(4)})
    write_tree(src, files)
    repo_dir = tmp_path / "repo"
    init_kill_repo(repo_dir, pack_size=2 * MiB)
    env = cli_env()
    cli = Cli(tmp_path, env)
    rp = cli.backup(str(repo_dir), str(src))["id"]
    target = tmp_path / "target"

    cli.env = {**env, "SNOWVAULT_ENGINE_RESTORERS": "2"}
    proc = cli.popen("repo", "restore", "--repo", str(repo_dir), rp, str(target))
    workers: set[int] = set()
    try:
        deadline = time.monotonic() + 60
        while _count(target) < 300:
            assert proc.poll() is None, f"restore ended first: {proc.communicate()}"
            assert time.monotonic() < deadline, "the restore wrote nothing"
            workers |= _children(proc.pid)
            time.sleep(0.001)
        workers |= _children(proc.pid)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    assert len(workers) == 2
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in workers):
        assert time.monotonic() < deadline, "a restore worker outlived the restore"
        time.sleep(0.05)
    assert 300 <= _count(target) < len(files)

    cli.env = env
    cli.run("repo", "restore", "--repo", str(repo_dir), rp, str(target), "--overwrite")
    assert read_tree(target) == files
    assert not [p for p in target.rglob("*") if p.name.endswith(".snowvault-restore")]


def _count(root: Path) -> int:
    return sum(len(names) for _, _, names in os.walk(root))


def _children(pid: int) -> set[int]:
    out = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as fh:
                    fields = fh.read().rsplit(b")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.add(int(entry))
    return out


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for a reaper is dead)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            state = fh.read().rsplit(b")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in (b"Z", b"X")
