"""Copy jobs killed at seeded random points (SQLite catalog, local storage in two
regions, FakeClock): the worker dies at the Nth blob written into the destination,
right after the destination's manifest landed, or while the catalog records the copy;
one to three attempts in a row. Every job ends COMPLETED or FAILED (three lost
attempts), a FAILED one is retried by a new job, the destination then holds exactly one
recovery point (catalog and repository agree once the orphan prune ran), passes
``check --read-data`` and restores identical."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from helpers import service_world as world
from snowvault.control import catalog
from snowvault.control.scheduler import runner, sweepers
from snowvault.control.services import (
    backup_jobs,
    copy_jobs,
    recovery_points,
    resources,
    restore_jobs,
    vaults,
)
from snowvault.control.services.base import Caller, Deps
from snowvault.engine import check
from snowvault.engine.repository import Repository
from snowvault.testing import FakeClock

EAST, WEST = "us-east-1", "eu-west-1"
ACCOUNT = "111122223333"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/backup"
LEASE = 60.0
KINDS = ("blob", "manifest", "record")


class _Killed(BaseException):
    """The worker dies here (a BaseException: nothing on the way out handles it, as
    nothing would handle a killed process; only context managers unwind)."""


@pytest.fixture
def deps(tmp_path: Path, clock: FakeClock) -> Iterator[Deps]:
    deps = world.make_deps(tmp_path, clock, regions=(EAST, WEST))
    yield deps
    deps.engine.dispose()


@pytest.fixture
def caller(deps: Deps) -> Caller:
    return world.root_caller(deps, account_id=ACCOUNT, region=EAST)


def _worker(deps: Deps) -> runner.Worker:
    return runner.Worker(deps, runner.WorkerOptions(threads=0, lease_seconds=LEASE))


@contextmanager
def _kill_at(monkeypatch: pytest.MonkeyPatch, kind: str, nth: int) -> Iterator[None]:
    """Make the worker die at one point of a copy: the ``nth`` blob written into the
    destination, after its manifest landed, or inside the catalog's record of it."""
    calls = [0]

    def wrap(original: Callable[..., Any], before: bool) -> Callable[..., Any]:
        def dying(*args: Any, **kwargs: Any) -> Any:
            calls[0] += 1
            if before and calls[0] == nth:
                raise _Killed
            result = original(*args, **kwargs)
            if not before:
                raise _Killed
            return result

        return dying

    with monkeypatch.context() as patch:
        if kind == "blob":
            patch.setattr(Repository, "add_blob", wrap(Repository.add_blob, before=True))
        elif kind == "manifest":
            patch.setattr(Repository, "save_manifest", wrap(Repository.save_manifest, False))
        else:
            create = catalog.recovery_points.create
            patch.setattr(catalog.recovery_points, "create", wrap(create, before=False))
        yield


def _one_run(deps: Deps, monkeypatch: pytest.MonkeyPatch, kill: tuple[str, int] | None) -> bool:
    """One worker pass; True if the worker died."""
    if kill is None:
        assert _worker(deps).run_once() is not None
        return False
    try:
        with _kill_at(monkeypatch, *kill):
            _worker(deps).run_once()
    except _Killed:
        return True
    return False  # the kill point lay past what this attempt had to do


def _lease_runs_out(deps: Deps) -> None:
    assert isinstance(deps.clock, FakeClock)
    deps.clock.advance(timedelta(seconds=LEASE * 2))
    sweepers.run(deps, deps.clock.now())


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 31])  # 31: three lost attempts, FAILED
def test_a_copy_killed_at_random_points_ends_once_and_whole(
    deps: Deps, caller: Caller, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    rng = random.Random(seed)
    src = tmp_path / "src"
    src.mkdir()
    for i in range(10):
        (src / f"f{i}.bin").write_bytes(rng.randbytes(rng.randint(20_000, 60_000)))
    vaults.create(deps, caller, "main")
    west = replace(caller, region=WEST)
    dest = vaults.create(deps, west, "dr")
    arn = resources.register(deps, caller, resource_type="Directory", name="src", source=str(src))
    backup = backup_jobs.start(deps, caller, backup_jobs.StartRequest("main", arn["arn"], ROLE))
    assert _worker(deps).run_once() == "COMPLETED"
    rp_arn = backup_jobs.get(deps, caller, backup.job_id).recovery_point_arn

    kills = [(rng.choice(KINDS), rng.randint(1, 11)) for _ in range(rng.randint(1, 3))]
    request = copy_jobs.StartRequest(rp_arn, "main", dest["arn"], ROLE)
    job_id = copy_jobs.start(deps, replace(caller, now=deps.clock.now()), request).copy_job_id
    for kill in kills:
        if not _one_run(deps, monkeypatch, kill):
            break
        assert copy_jobs.get(deps, caller, job_id).state == "RUNNING"  # as a dead worker left it
        _lease_runs_out(deps)
    job = copy_jobs.get(deps, caller, job_id)
    if job.state == "CREATED":  # handed back by the lease sweep: a live worker retries it
        assert not _one_run(deps, monkeypatch, None)
        job = copy_jobs.get(deps, caller, job_id)
    assert job.state in ("COMPLETED", "FAILED"), (kills, job.state, job.status_message)
    if job.state == "FAILED":  # three lost attempts: the caller starts it again
        assert job.attempts == 3, kills
        retry = copy_jobs.start(deps, replace(caller, now=deps.clock.now()), request)
        assert not _one_run(deps, monkeypatch, None)
        job = copy_jobs.get(deps, caller, retry.copy_job_id)
        assert job.state == "COMPLETED", job.status_message

    # what the dead attempts left is collected; exactly one point, in both places
    assert isinstance(deps.clock, FakeClock)
    deps.clock.advance(vaults.ORPHAN_GRACE + timedelta(minutes=1))
    sweepers.run(deps, deps.clock.now())
    later = replace(west, now=deps.clock.now())
    filters = catalog.recovery_points.RecoveryPointFilters()
    points = recovery_points.list_by_vault(deps, later, "dr", filters).items
    assert [p.arn for p in points] == [job.destination_recovery_point_arn], kills
    with vaults.open_repository(deps, dest) as repo:
        assert repo.list_manifests() == [points[0].engine_recovery_point_id], kills
        assert check.check(repo, read_data=True).ok, kills
    restore_jobs.start(
        deps, later, recovery_point_arn=points[0].arn, metadata={"targetPath": str(tmp_path / "o")}
    )
    assert _worker(deps).run_once() == "COMPLETED"
    for path in src.iterdir():
        assert (tmp_path / "o" / path.name).read_bytes() == path.read_bytes()
