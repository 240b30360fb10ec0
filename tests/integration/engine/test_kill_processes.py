"""SIGKILL a backup that runs worker processes: content workers
(SNOWVAULT_ENGINE_PROCESSES=2) or walk workers (SNOWVAULT_ENGINE_WALKERS=2).

Content workers only seal blobs (the killed parent alone wrote packs and index
segments); walk workers write packs and segments of their own, each pack whole before
its segment. Either way the repository is as whole as after killing the single-process
path (test_kill.py): no worker outlives the killed backup, no recovery point, ``check``
passes, the next backup with workers completes, reuses what landed, and restores byte
for byte.
"""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

import pytest

from helpers.engine_cli import PASSWORD, Cli, cli_env, init_kill_repo, read_tree, write_tree
from snowvault.engine import check, restorer
from snowvault.engine.backends.local import LocalBackend
from snowvault.engine.repository import Repository

MiB = 1024 * 1024


@pytest.mark.parametrize("variable", ["SNOWVAULT_ENGINE_PROCESSES", "SNOWVAULT_ENGINE_WALKERS"])
def test_backup_with_workers_killed_after_first_index_leaves_a_whole_repository(
    tmp_path: Path, variable: str
) -> None:
    src = tmp_path / "src"
    rng = random.Random(20261207)
    files = {f"d{i % 3}/f{i:02d}.bin": rng.randbytes(3 * MiB) for i in range(10)}
    files.update({f"small/s{i:03d}.txt": rng.randbytes(2000) for i in range(300)})
    write_tree(src, files)
    repo_dir = tmp_path / "repo"
    init_kill_repo(repo_dir, pack_size=2 * MiB)
    tag = f"sv-kill-{tmp_path.name}-{os.getpid()}"
    cli = Cli(tmp_path, cli_env() | {variable: "2", "SV_TEST_TAG": tag})

    proc = cli.popen("repo", "backup", "--repo", str(repo_dir), str(src), "--json")
    try:
        deadline = time.monotonic() + 60
        while not [p for p in (repo_dir / "index").glob("*") if ".sv-tmp-" not in p.name]:
            assert proc.poll() is None, f"backup ended before an index: {proc.communicate()}"
            assert time.monotonic() < deadline, "never wrote an index segment"
            time.sleep(0.002)
        assert len(_tagged(tag)) >= 2  # the backup and at least one worker: the scan sees them
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    deadline = time.monotonic() + 10  # the workers die with their parent: no orphans
    while _tagged(tag) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _tagged(tag) == []

    assert not list((repo_dir / "recovery-points").glob("*"))
    with Repository.open(LocalBackend(str(repo_dir)), password=PASSWORD) as repo:
        after_kill = check.check(repo)
        landed = len(repo.master_index)
    assert after_kill.ok, after_kill.problems
    assert landed > 0

    summary = cli.backup(str(repo_dir), str(src))
    assert summary["files_new"] == len(files) and summary["partial"] is False
    with Repository.open(LocalBackend(str(repo_dir)), password=PASSWORD) as repo:
        final = check.check(repo, read_data=True)
        assert final.ok, final.problems
        result = restorer.restore(repo, summary["id"], tmp_path / "restored")
        assert result.errors == []
    assert read_tree(tmp_path / "restored") == read_tree(src)


def _tagged(tag: str) -> list[int]:
    """Processes still running with ``SV_TEST_TAG=tag`` in their environment."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            env = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if f"SV_TEST_TAG={tag}".encode() in env.split(b"\0") and state != "Z":
            found.append(int(entry.name))
    return found
