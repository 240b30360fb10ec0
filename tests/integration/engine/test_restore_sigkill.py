"""SIGKILL a CLI restore halfway (its threads writing runs of files read a pack segment at
a time, restore_reads.py) and retry it with --overwrite: the retry completes and the
target is the recovery point byte for byte -- the cut files and the leftover temp files
replaced, nothing left over."""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

from helpers.engine_cli import Cli, cli_env, init_kill_repo, read_tree, write_tree

MiB = 1024 * 1024


def test_a_restore_killed_halfway_is_finished_by_a_retry(tmp_path: Path) -> None:
    src = tmp_path / "src"
    rng = random.Random(15)
    files = {
        f"d{i % 40:02d}/f{i:04d}.txt": rng.randbytes(rng.randrange(1, 6000)) for i in range(4000)
    }
    files.update({f"big/b{i}.bin": rng.randbytes(3 * MiB) for i in range(4)})
    write_tree(src, files)
    repo_dir = tmp_path / "repo"
    init_kill_repo(repo_dir, pack_size=2 * MiB)
    cli = Cli(tmp_path, cli_env())
    rp = cli.backup(str(repo_dir), str(src))["id"]
    target = tmp_path / "target"

    proc = cli.popen("repo", "restore", "--repo", str(repo_dir), rp, str(target))
    try:
        deadline = time.monotonic() + 60
        while _count(target) < 300:
            assert proc.poll() is None, f"restore ended first: {proc.communicate()}"
            assert time.monotonic() < deadline, "the restore wrote nothing"
            time.sleep(0.001)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    assert 300 <= _count(target) < len(files)

    cli.run("repo", "restore", "--repo", str(repo_dir), rp, str(target), "--overwrite")
    assert read_tree(target) == files
    assert not [p for p in target.rglob("*") if p.name.endswith(".snowvault-restore")]


def _count(root: Path) -> int:
    return sum(len(names) for _, _, names in os.walk(root))
