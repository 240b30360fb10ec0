"""A recovery point's unique bytes (DescribeRecoveryPoint's ``SnowvaultUniqueBytes``)
over a real local vault (SQLite catalog, FakeClock): what DeleteRecoveryPoint and the
prune after it free is what was reported, within a few percent; the answer is cached
per vault until the vault changes."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from helpers import service_world as world
from snowvault.control.scheduler import runner
from snowvault.control.services import (
    backup_jobs,
    recovery_points,
    resources,
    vaults,
)
from snowvault.control.services.base import Caller, Deps
from snowvault.engine import check, usage
from snowvault.testing import FakeClock

REGION, ACCOUNT = "us-east-1", "111122223333"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/backup"


@pytest.fixture
def deps(tmp_path: Path, clock: FakeClock) -> Iterator[Deps]:
    deps = world.make_deps(tmp_path, clock)
    yield deps
    deps.engine.dispose()


@pytest.fixture
def caller(deps: Deps) -> Caller:
    return world.root_caller(deps)


def _write(path: Path, rng: random.Random, size: int, mtime: int = 1_700_000_000) -> None:
    path.write_bytes(rng.randbytes(size))  # incompressible: stored ~ plaintext
    os.utime(path, (mtime, mtime))  # a rewrite is seen by its mtime, not its content


def _backup(deps: Deps, caller: Caller, arn: str) -> str:
    job = backup_jobs.start(deps, caller, backup_jobs.StartRequest("v", arn, ROLE))
    assert runner.Worker(deps, runner.WorkerOptions(threads=0)).run_once() == "COMPLETED"
    return backup_jobs.get(deps, caller, job.job_id).recovery_point_arn


def _sizes(root: Path) -> tuple[int, int]:
    """(bytes in packs, bytes in every object) of the vault's store."""
    files = [p for p in root.rglob("*") if p.is_file()]
    packs = sum(p.stat().st_size for p in files if "/data/" in str(p))
    return packs, sum(p.stat().st_size for p in files)


def _unique(deps: Deps, caller: Caller, arn: str) -> int | None:
    return recovery_points.unique_bytes(deps, recovery_points.get(deps, caller, "v", arn))


def test_delete_and_prune_free_what_the_point_held_alone(
    deps: Deps, caller: Caller, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(14)
    src = tmp_path / "src"
    src.mkdir()
    for i in range(4):
        _write(src / f"base{i}.bin", rng, 200_000)
    vault = vaults.create(deps, caller, "v")
    arn = str(
        resources.register(deps, caller, resource_type="Directory", name="src", source=str(src))[
            "arn"
        ]
    )
    first = _backup(deps, caller, arn)
    _write(src / "middle-only.bin", rng, 600_000)  # only the middle point holds it
    _write(src / "kept.bin", rng, 150_000)  # the middle and the last point share it
    middle = _backup(deps, caller, arn)
    (src / "middle-only.bin").unlink()
    _write(
        src / "base0.bin", rng, 200_000, 1_800_000_000
    )  # rewritten: the first point's copy is its own
    last = _backup(deps, caller, arn)

    unique = {rp: _unique(deps, caller, rp) for rp in (first, middle, last)}
    assert all(isinstance(n, int) for n in unique.values()), unique
    assert 600_000 <= (unique[middle] or 0) < 650_000  # its file, and its own trees
    assert (unique[first] or 0) < 5_000  # its trees: the old base0 is the middle's too
    assert 200_000 <= (unique[last] or 0) < 230_000  # the new base0

    # cached: describing again reads no tree while the vault is unchanged
    def no_pass(*_: object) -> dict[str, int]:
        raise AssertionError("the vault was walked again")

    monkeypatch.setattr(usage, "unique_bytes", no_pass)
    assert _unique(deps, caller, middle) == unique[middle]
    monkeypatch.undo()

    store = Path(str(vault["storage_url"]))  # a local location: a directory
    assert (store / "config").is_file()
    packs_before, all_before = _sizes(store)
    now = replace(caller, now=deps.clock.now())
    recovery_points.delete(deps, now, "v", middle)
    assert recovery_points.prune_pending(deps) == [vault["arn"]]
    packs_after, all_after = _sizes(store)
    freed = unique[middle] or 0
    assert abs((packs_before - packs_after) - freed) <= 0.03 * freed
    assert abs((all_before - all_after) - freed) <= 0.05 * freed

    # the vault changed: asked again, the points are walked anew, and what they shared
    # with the deleted point alone is now theirs alone
    alone = _unique(deps, caller, first)
    assert alone is not None and alone >= (unique[first] or 0) + 200_000  # the old base0
    kept = _unique(deps, caller, last)
    assert kept is not None and kept >= (unique[last] or 0) + 150_000  # kept.bin
    with vaults.open_repository(deps, vault) as repo:
        assert check.check(repo, read_data=True).ok
