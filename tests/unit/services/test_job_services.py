from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path

import pytest

from snowvault.control import catalog
from snowvault.control.scheduler import runner
from snowvault.control.services import (
    backup_jobs,
    recovery_points,
    resources,
    restore_jobs,
    vaults,
)
from snowvault.control.services.base import Caller, Deps
from snowvault.control.services.errors import JobStopped
from snowvault.core.errors import NotFound
from snowvault.testing import FakeClock

ROLE = "arn:aws:iam::111122223333:role/r"


def _tree(root: Path) -> None:
    rng = random.Random(5)
    for i in range(5):
        (root / f"f{i}").parent.mkdir(parents=True, exist_ok=True)
        (root / f"f{i}").write_bytes(rng.randbytes(1000 * (i + 1)))


def _setup(deps: Deps, caller: Caller, tmp_path: Path) -> str:
    _tree(tmp_path / "src")
    vaults.create(deps, caller, "v")
    return str(
        resources.register(
            deps, caller, resource_type="Directory", name="src", source=str(tmp_path / "src")
        )["arn"]
    )


def _worker(deps: Deps, lease: float = 30.0) -> runner.Worker:
    return runner.Worker(deps, runner.WorkerOptions(lease_seconds=lease, worker_id="w1"))


def test_backup_then_restore_through_the_worker(deps: Deps, caller: Caller, tmp_path: Path) -> None:
    arn = _setup(deps, caller, tmp_path)
    req = backup_jobs.StartRequest("v", arn, ROLE, lifecycle={"DeleteAfterDays": 10})
    job = backup_jobs.start(deps, caller, req)
    assert job.state == "CREATED" and job.start_by == caller.now + timedelta(hours=8)
    assert _worker(deps).run_once() == "COMPLETED"
    done = backup_jobs.get(deps, caller, job.job_id)
    assert (done.percent_done, done.bytes_transferred) == (100.0, 15000)
    rp = recovery_points.get(deps, caller, "v", done.recovery_point_arn)
    assert rp.delete_at == job.creation_date + timedelta(days=10)
    assert resources.get(deps, caller, arn)["last_recovery_point_arn"] == rp.arn

    target = tmp_path / "out"
    restore_jobs.start(
        deps, caller, recovery_point_arn=rp.arn, metadata={"targetPath": str(target)}
    )
    assert _worker(deps).run_once() == "COMPLETED"
    assert (target / "f4").read_bytes() == (tmp_path / "src" / "f4").read_bytes()


def test_idempotency_token_returns_the_first_job(
    deps: Deps, caller: Caller, tmp_path: Path
) -> None:
    arn = _setup(deps, caller, tmp_path)
    req = backup_jobs.StartRequest("v", arn, ROLE, idempotency_token="tok")
    assert backup_jobs.start(deps, caller, req).job_id == (
        backup_jobs.start(deps, caller, req).job_id
    )


def test_unregistered_resource_is_not_found(deps: Deps, caller: Caller) -> None:
    vaults.create(deps, caller, "v")
    req = backup_jobs.StartRequest("v", "arn:aws:snowvault:us-east-1:1:directory/x", ROLE)
    with pytest.raises(NotFound):
        backup_jobs.start(deps, caller, req)


def test_job_not_started_in_its_window_expires(
    deps: Deps, caller: Caller, clock: FakeClock, tmp_path: Path
) -> None:
    arn = _setup(deps, caller, tmp_path)
    job = backup_jobs.start(
        deps, caller, backup_jobs.StartRequest("v", arn, ROLE, start_window_minutes=60)
    )
    clock.advance(timedelta(minutes=61))
    _worker(deps).sweep_once()
    assert backup_jobs.get(deps, caller, job.job_id).state == "EXPIRED"


def test_dead_worker_job_is_retried_then_failed(
    deps: Deps, caller: Caller, clock: FakeClock, tmp_path: Path
) -> None:
    arn = _setup(deps, caller, tmp_path)
    job = backup_jobs.start(deps, caller, backup_jobs.StartRequest("v", arn, ROLE))
    states = []
    for _ in range(3):
        assert (
            backup_jobs.JOB_KIND.claim(deps, "dead", [], 10.0) is not None
        )  # then never heartbeats
        clock.advance(11)
        _worker(deps).sweep_once()
        states.append(backup_jobs.get(deps, caller, job.job_id).state)
    assert states == ["PENDING", "PENDING", "FAILED"]


def test_stop_request_reaches_the_running_job(deps: Deps, caller: Caller, tmp_path: Path) -> None:
    arn = _setup(deps, caller, tmp_path)
    job = backup_jobs.start(deps, caller, backup_jobs.StartRequest("v", arn, ROLE))
    claimed = backup_jobs.JOB_KIND.claim(deps, "w1", [], 30.0)
    assert claimed is not None
    backup_jobs.stop(deps, caller, job.job_id)
    lease = runner.JobLease(deps, backup_jobs.JOB_KIND, claimed, "w1", 30.0)
    lease.beat()
    with pytest.raises(JobStopped):
        lease.report(percent_done=1.0)
    assert backup_jobs.JOB_KIND.execute(deps, claimed, "w1", lease) == "ABORTED"
    assert backup_jobs.get(deps, caller, job.job_id).state == "ABORTED"


def test_delete_recovery_point_prunes_in_the_background(
    deps: Deps, caller: Caller, tmp_path: Path
) -> None:
    arn = _setup(deps, caller, tmp_path)
    backup_jobs.start(deps, caller, backup_jobs.StartRequest("v", arn, ROLE))
    _worker(deps).run_once()
    vault = vaults.get(deps, caller, "v")
    rp = recovery_points.list_by_vault(
        deps, caller, "v", catalog.recovery_points.RecoveryPointFilters()
    ).items[0]
    recovery_points.delete(deps, caller, "v", rp.arn)
    with vaults.open_repository(deps, vault) as repo:
        assert repo.list_manifests() == []
        packs_before = len(list(repo.list_packs()))
    assert recovery_points.prune_pending(deps) == [vault["arn"]]
    with vaults.open_repository(deps, vault) as repo:
        assert len(list(repo.list_packs())) < packs_before
    assert recovery_points.prune_pending(deps) == []
