"""SIGKILL a ``snowvault repo backup`` process mid-run, then prove nothing was lost.

A ~64 MiB tree (deterministic, written once per module) is backed up by a real CLI
process, killed at a moment detected by watching the repository directory: as soon as
it holds its lock (nothing written yet), when the first pack lands, when the first
index segment lands, and once several packs are indexed. After each kill: no recovery
point exists (the manifest is the only commit point), ``check`` passes (unindexed packs
are warnings), the killed process's lock is left behind but blocks neither the next
backup nor prune, the next backup completes and reuses every indexed pack that landed
(its bytes_added shrinks by about their size), prune reclaims the rest, and the result
restores byte for byte.
"""

from __future__ import annotations

import random
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from helpers.engine_cli import PASSWORD, Cli, init_kill_repo, read_tree, write_tree
from snowvault.engine import check, restorer
from snowvault.engine.backends.local import LocalBackend
from snowvault.engine.repository import Repository

FILES = 12
FILE_SIZE = 5 * 1024 * 1024
MiB = 1024 * 1024


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """The tree to back up and its total size; random bytes, so nothing compresses."""
    root = tmp_path_factory.mktemp("kill-src") / "src"
    rng = random.Random(20261126)
    files = {f"d{i % 3}/f{i:02d}.bin": rng.randbytes(FILE_SIZE) for i in range(FILES)}
    files.update({f"small/s{i:03d}.txt": f"small {i}\n".encode() * 50 for i in range(100)})
    write_tree(root, files)
    return root, sum(len(v) for v in files.values())


def _objects(repo: Path, prefix: str) -> list[Path]:
    return [
        p for p in (repo / prefix).rglob("*") if p.is_file() and not p.name.startswith(".sv-tmp-")
    ]


KILL_POINTS: dict[str, Callable[[Path], bool]] = {
    "locked": lambda r: bool(_objects(r, "locks")),
    "first-pack": lambda r: bool(_objects(r, "data")),
    "first-index": lambda r: bool(_objects(r, "index")),
    "several-packs": lambda r: len(_objects(r, "index")) >= 5,
}


def _indexed_pack_bytes(repo: Repository) -> int:
    sizes = dict(repo.list_packs())
    return sum(sizes.get(loc, 0) for loc in {loc.pack_id for _, loc in repo.master_index.items()})


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_backup_killed_at_a_point_leaves_a_whole_repository(
    point: str, source: tuple[Path, int], cli: Cli, tmp_path: Path
) -> None:
    src, total = source
    repo_dir = tmp_path / "repo"
    init_kill_repo(repo_dir, pack_size=4 * MiB)

    proc = cli.popen("repo", "backup", "--repo", str(repo_dir), str(src), "--json")
    try:
        deadline = time.monotonic() + 60
        while not KILL_POINTS[point](repo_dir):
            assert proc.poll() is None, f"backup ended before {point}: {proc.communicate()}"
            assert time.monotonic() < deadline, f"never reached {point}"
            time.sleep(0.002)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.communicate()
    assert proc.returncode == -signal.SIGKILL

    # nothing half-visible; the dead process's lock is still there
    assert not _objects(repo_dir, "recovery-points")
    assert len(_objects(repo_dir, "locks")) == 1
    with Repository.open(LocalBackend(str(repo_dir)), password=PASSWORD) as repo:
        after_kill = check.check(repo)
        landed = _indexed_pack_bytes(repo)
        unindexed = len(list(repo.list_packs())) - len(
            {loc.pack_id for _, loc in repo.master_index.items()}
        )
    assert after_kill.ok, after_kill.problems
    assert len(after_kill.warnings) == unindexed
    assert all("not in the index" in w for w in after_kill.warnings)
    if point == "several-packs":
        assert landed >= 4 * 4 * MiB

    summary = cli.backup(str(repo_dir), str(src))  # the stale lock does not block it
    assert summary["files_new"] == FILES + 100 and summary["partial"] is False
    if landed:
        # every indexed pack that landed is reused: only the rest is added
        assert summary["bytes_added"] <= total - 0.9 * landed + 256 * 1024
    else:
        assert summary["bytes_added"] >= total - 100 * 1024  # the small files compress

    pruned = cli.json("repo", "prune", "--repo", str(repo_dir))  # nor does it block prune
    assert pruned["recovery_points"] == 1
    with Repository.open(LocalBackend(str(repo_dir)), password=PASSWORD) as repo:
        final = check.check(repo, read_data=True)
        assert final.ok and final.warnings == [], (final.problems, final.warnings)
        result = restorer.restore(repo, summary["id"], tmp_path / "restored")
        assert result.errors == []
    assert read_tree(tmp_path / "restored") == read_tree(src)
