"""Copy jobs over real vaults (SQLite catalog, local storage in two regions, FakeClock):
a copy restores identical in another region, a second copy moves only what changed,
cross-account copies need the destination's access policy, a rule's CopyActions run
after its backups, and a copy killed midway is retried cleanly."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from helpers import service_world as world
from snowvault.control import catalog
from snowvault.control.catalog import continuous as continuous_points
from snowvault.control.scheduler import runner, simulation, sweepers
from snowvault.control.services import (
    backup_jobs,
    copy_jobs,
    iam,
    plans,
    recovery_points,
    resources,
    restore_jobs,
    selections,
    vaults,
)
from snowvault.control.services.base import Caller, Deps
from snowvault.core.clock import SystemClock
from snowvault.core.errors import Conflict, InvalidInput, NotFound
from snowvault.engine import check
from snowvault.testing import FakeClock

EAST, WEST = "us-east-1", "eu-west-1"
SOURCE, PARTNER = "111122223333", "444455556666"
ROLE = f"arn:aws:iam::{SOURCE}:role/backup"


@pytest.fixture
def deps(tmp_path: Path, clock: FakeClock) -> Iterator[Deps]:
    deps = world.make_deps(tmp_path, clock, regions=(EAST, WEST))
    yield deps
    deps.engine.dispose()


@pytest.fixture
def source(deps: Deps) -> Caller:
    return world.root_caller(deps, account_id=SOURCE, region=EAST)


@pytest.fixture
def partner(deps: Deps, source: Caller) -> Caller:
    made = iam.create_account(deps, source, world.access_keys(), "partner", account_id=PARTNER)
    return Caller(PARTNER, EAST, made.principal_arn, deps.clock.now())


def _tree(root: Path, seed: int = 7) -> None:
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(6):
        (root / f"f{i}.bin").write_bytes(rng.randbytes(40_000))


def _worker(deps: Deps, worker_id: str = "w1") -> runner.Worker:
    return runner.Worker(deps, runner.WorkerOptions(threads=0, worker_id=worker_id))


def _backup(deps: Deps, caller: Caller, arn: str, vault: str = "main") -> str:
    job = backup_jobs.start(deps, caller, backup_jobs.StartRequest(vault, arn, ROLE))
    assert _worker(deps).run_once() == "COMPLETED"
    return backup_jobs.get(deps, caller, job.job_id).recovery_point_arn


@pytest.fixture
def resource(deps: Deps, source: Caller, tmp_path: Path) -> str:
    _tree(tmp_path / "src")
    vaults.create(deps, source, "main")
    row = resources.register(
        deps, source, resource_type="Directory", name="src", source=str(tmp_path / "src")
    )
    return str(row["arn"])


def _copy(deps: Deps, caller: Caller, rp_arn: str, to: str, **kw: Any) -> str:
    req = copy_jobs.StartRequest(rp_arn, "main", to, ROLE, **kw)
    return copy_jobs.start(deps, replace(caller, now=deps.clock.now()), req).copy_job_id


def _restore(deps: Deps, caller: Caller, rp_arn: str, target: Path) -> None:
    restore_jobs.start(
        deps, caller, recovery_point_arn=rp_arn, metadata={"targetPath": str(target)}
    )
    assert _worker(deps).run_once() == "COMPLETED"


def _same(a: Path, b: Path) -> bool:
    names = sorted(p.name for p in a.iterdir())
    return names == sorted(p.name for p in b.iterdir()) and all(
        (a / n).read_bytes() == (b / n).read_bytes() for n in names
    )


def _check(deps: Deps, vault_arn: str) -> check.CheckReport:
    with catalog.db.read_transaction(deps.engine) as conn:
        vault = catalog.vaults.get_by_arn(conn, vault_arn)
    with vaults.open_repository(deps, vault) as repo:
        return check.check(repo, read_data=True)


def test_a_copy_into_another_region_restores_identical_and_a_second_moves_little(
    deps: Deps, source: Caller, resource: str, tmp_path: Path
) -> None:
    west = replace(source, region=WEST)
    dr = vaults.create(deps, west, "dr")
    first_rp = _backup(deps, source, resource)
    job_id = _copy(deps, source, first_rp, dr["arn"], lifecycle={"DeleteAfterDays": 30})
    assert copy_jobs.get(deps, source, job_id).state == "CREATED"
    with pytest.raises(Conflict, match=f"copy job {job_id} is CREATED"):
        vaults.delete(deps, west, "dr")  # a queued copy holds its destination
    assert _worker(deps).run_once() == "COMPLETED"
    first = copy_jobs.get(deps, source, job_id)
    assert first.destination_recovery_point_arn.startswith(f"arn:aws:backup:{WEST}:{SOURCE}:")
    assert first.bytes_transferred and first.bytes_transferred >= 240_000
    assert first.backup_size_in_bytes == 240_000 and first.percent_done == 100.0

    copied = recovery_points.get(deps, west, "dr", first.destination_recovery_point_arn)
    original = recovery_points.get(deps, source, "main", first_rp)
    assert copied.source_backup_vault_arn == original.backup_vault_arn
    assert copied.creation_date == original.creation_date  # AWS: the source's date
    assert copied.delete_at == original.creation_date + timedelta(days=30)
    _restore(deps, west, copied.arn, tmp_path / "out")
    assert _same(tmp_path / "src", tmp_path / "out")

    # change about 1% of the data, back up and copy again: little moves
    assert isinstance(deps.clock, FakeClock)
    deps.clock.advance(timedelta(hours=1))
    data = bytearray((tmp_path / "src" / "f2.bin").read_bytes())
    data[1000:3400] = random.Random(1).randbytes(2400)
    (tmp_path / "src" / "f2.bin").write_bytes(bytes(data))
    second_job = _copy(deps, source, _backup(deps, source, resource), dr["arn"])
    assert _worker(deps).run_once() == "COMPLETED"
    second = copy_jobs.get(deps, source, second_job)
    assert second.bytes_transferred is not None
    assert 0 < second.bytes_transferred < first.bytes_transferred * 0.25
    assert _check(deps, dr["arn"]).ok

    by_dest = catalog.copy_jobs.CopyJobFilters(destination_vault_arn=dr["arn"], state="COMPLETED")
    listed = copy_jobs.list_jobs(deps, source, by_dest).items
    assert [j.copy_job_id for j in listed] == [second_job, job_id]
    assert copy_jobs.list_jobs(deps, west, by_dest).items == []  # the source region lists them


def _allow(account: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
                    "Action": "backup:CopyIntoBackupVault",
                    "Resource": "*",
                }
            ],
        }
    )


def test_cross_account_needs_the_destination_policy_and_each_sees_only_its_own(
    deps: Deps, source: Caller, partner: Caller, resource: str
) -> None:
    vault = vaults.create(deps, partner, "inbox")
    rp_arn = _backup(deps, source, resource)
    refused = _copy(deps, source, rp_arn, vault["arn"])
    assert _worker(deps).run_once() == "FAILED"
    job = copy_jobs.get(deps, source, refused)
    assert job.status_message == copy_jobs.ACCESS_DENIED
    assert job.message_category == "ACCESS_DENIED"
    # a vault that does not exist in another account fails the same way (no oracle)
    ghost = vaults.vault_arn(EAST, PARTNER, "ghost")
    _copy(deps, source, rp_arn, ghost)
    assert _worker(deps).run_once() == "FAILED"
    failed = copy_jobs.list_jobs(deps, source, catalog.copy_jobs.CopyJobFilters(state="FAILED"))
    assert {j.status_message for j in failed.items} == {copy_jobs.ACCESS_DENIED}

    iam.put_vault_access_policy(deps, partner, "inbox", _allow(SOURCE))
    allowed = _copy(deps, source, rp_arn, vault["arn"])
    assert _worker(deps).run_once() == "COMPLETED"
    copy_arn = copy_jobs.get(deps, source, allowed).destination_recovery_point_arn
    assert copy_arn.split(":")[4] == PARTNER

    theirs = recovery_points.list_by_vault(
        deps, partner, "inbox", catalog.recovery_points.RecoveryPointFilters()
    ).items
    assert [p.arn for p in theirs] == [copy_arn]
    with pytest.raises(NotFound):
        recovery_points.get(deps, partner, "main", rp_arn)  # not the source's point
    with pytest.raises(NotFound):
        copy_jobs.get(deps, partner, allowed)  # the job is the source account's
    with pytest.raises(NotFound):
        recovery_points.get(deps, source, "inbox", copy_arn)
    assert _check(deps, vault["arn"]).ok


def test_a_rules_copy_action_runs_after_each_backup_on_the_test_clock(
    deps: Deps, source: Caller, resource: str, clock: FakeClock
) -> None:
    dr = vaults.create(deps, replace(source, region=WEST), "dr")
    resources.tag(deps, source, resource, {"Backup": "true"})
    rule = {
        "RuleName": "nightly",
        "TargetBackupVaultName": "main",
        "ScheduleExpression": "cron(0 5 ? * * *)",
        "CopyActions": [
            {"DestinationBackupVaultArn": dr["arn"], "Lifecycle": {"DeleteAfterDays": 7}}
        ],
    }
    plan_id = str(
        plans.create(deps, source, {"BackupPlanName": "p", "Rules": [rule]})["backup_plan_id"]
    )
    tag = {"ConditionType": "STRINGEQUALS", "ConditionKey": "Backup", "ConditionValue": "true"}
    selections.create(
        deps,
        source,
        plan_id,
        {"SelectionName": "s", "IamRoleArn": ROLE, "ListOfTags": [tag]},
    )
    settable = simulation.SettableClock(clock.now(), SystemClock())
    sim = replace(deps, clock=settable)
    worker = _worker(sim)
    simulation.advance(
        sim, settable, datetime(2026, 1, 2, 6, tzinfo=UTC), lambda: simulation.drain(worker)
    )
    done = copy_jobs.list_jobs(deps, source, catalog.copy_jobs.CopyJobFilters()).items
    assert len(done) == 2 and {j.state for j in done} == {"COMPLETED"}
    assert all(j.created_by_backup_job_id and j.created_by for j in done)
    assert {(j.created_by or {}).get("BackupPlanId") for j in done} == {plan_id}
    west = replace(source, region=WEST)
    copies = recovery_points.list_by_vault(
        deps, west, "dr", catalog.recovery_points.RecoveryPointFilters()
    ).items
    assert len(copies) == 2
    assert all(p.delete_at == p.creation_date + timedelta(days=7) for p in copies)


class _Crash(Exception):
    """The worker dies here."""


class _DiesMidway:
    """A job control whose worker dies at the third progress report."""

    def __init__(self) -> None:
        self.reports = 0

    def report(self, **progress: Any) -> None:
        self.reports += 1
        if self.reports == 3:
            raise _Crash


def test_a_copy_killed_midway_is_retried_cleanly(
    deps: Deps, source: Caller, resource: str, tmp_path: Path
) -> None:
    west = replace(source, region=WEST)
    dr = vaults.create(deps, west, "dr")
    job_id = _copy(deps, source, _backup(deps, source, resource), dr["arn"])
    with catalog.db.transaction(deps.engine) as conn:
        claimed = catalog.copy_jobs.QUEUE.claim(
            conn, worker_id="dies", labels=[], lease_seconds=60, now=deps.clock.now()
        )
    assert claimed is not None and claimed.copy_job_id == job_id
    with pytest.raises(_Crash):
        copy_jobs.run(deps, claimed, "dies", _DiesMidway())
    assert copy_jobs.get(deps, source, job_id).state == "RUNNING"

    assert isinstance(deps.clock, FakeClock)
    deps.clock.advance(timedelta(minutes=5))  # the lease ran out: the sweep hands it back
    sweepers.run(deps, deps.clock.now())
    assert copy_jobs.get(deps, source, job_id).state == "CREATED"
    assert _worker(deps).run_once() == "COMPLETED"
    done = copy_jobs.get(deps, source, job_id)
    assert done.attempts == 2
    # what the dead run wrote was found and skipped
    assert done.bytes_transferred is not None and done.bytes_transferred < 240_000
    assert _check(deps, dr["arn"]).ok
    _restore(deps, west, done.destination_recovery_point_arn, tmp_path / "out")
    assert _same(tmp_path / "src", tmp_path / "out")


def test_refused_at_the_call_cold_foreign_or_unknown(
    deps: Deps, source: Caller, partner: Caller, resource: str
) -> None:
    dr = vaults.create(deps, replace(source, region=WEST), "dr")
    lifecycle = {"MoveToColdStorageAfterDays": 1, "DeleteAfterDays": 100}
    job = backup_jobs.start(
        deps, source, backup_jobs.StartRequest("main", resource, ROLE, lifecycle=lifecycle)
    )
    assert _worker(deps).run_once() == "COMPLETED"
    rp_arn = backup_jobs.get(deps, source, job.job_id).recovery_point_arn
    with pytest.raises(InvalidInput, match="not a backup vault ARN"):
        _copy(deps, source, rp_arn, "arn:aws:s3:::bucket")
    with pytest.raises(InvalidInput, match="is the source backup vault"):
        _copy(deps, source, rp_arn, vaults.vault_arn(EAST, SOURCE, "main"))
    with pytest.raises(NotFound):  # the caller's own account: it must exist
        _copy(deps, source, rp_arn, vaults.vault_arn(WEST, SOURCE, "nowhere"))
    with pytest.raises(NotFound):  # another account's point is not theirs to copy
        _copy(deps, partner, rp_arn, vaults.vault_arn(EAST, PARTNER, "mine"))
    with catalog.db.transaction(deps.engine) as conn:  # as if it were a PITR chain
        continuous_points.create(
            conn,
            recovery_point_arn=rp_arn,
            resource_arn=resource,
            backup_vault_arn=vaults.vault_arn(EAST, SOURCE, "main"),
            rule_id=None,
            slot_name="slot",
            retention_days=7,
            now=deps.clock.now(),
        )
    # a continuous point is copied as its newest base backup: with none yet, the job fails
    failed = _copy(deps, source, rp_arn, dr["arn"])
    assert _worker(deps).run_once() == "FAILED"
    assert copy_jobs.get(deps, source, failed).status_message == (
        f"recovery point {rp_arn} is a continuous backup with no base backup yet: "
        "nothing to copy (try again after its first base backup)"
    )
    with catalog.db.transaction(deps.engine) as conn:
        continuous_points.delete(conn, rp_arn)
    assert isinstance(deps.clock, FakeClock)
    deps.clock.advance(timedelta(days=2))
    with pytest.raises(Conflict, match="cold storage"):
        _copy(deps, source, rp_arn, dr["arn"])


def test_a_repeated_idempotency_token_returns_the_first_job(
    deps: Deps, source: Caller, resource: str
) -> None:
    dr = vaults.create(deps, replace(source, region=WEST), "dr")
    rp_arn = _backup(deps, source, resource)
    first = _copy(deps, source, rp_arn, dr["arn"], idempotency_token="t-1")
    assert _copy(deps, source, rp_arn, dr["arn"], idempotency_token="t-1") == first
    assert _copy(deps, source, rp_arn, dr["arn"], idempotency_token="t-2") != first
