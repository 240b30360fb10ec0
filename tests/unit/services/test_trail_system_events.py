"""The trail records system actions as CloudTrail AwsServiceEvents: a scheduled job's
creation, start and end, the expiry and prune sweeps, restore and copy jobs (issue 16),
on a FakeClock."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from snowvault.control import catalog
from snowvault.control.scheduler import runner, simulation
from snowvault.control.services import (
    backup_jobs,
    copy_jobs,
    plans,
    recovery_points,
    resources,
    restore_jobs,
    selections,
    trail,
    vaults,
)
from snowvault.control.services.base import Caller, Deps
from snowvault.core.clock import SystemClock
from snowvault.testing import FakeClock

ROLE = "arn:aws:iam::111122223333:role/r"


def _scheduled_world(deps: Deps, caller: Caller, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_bytes(random.Random(7).randbytes(2048))
    vaults.create(deps, caller, "main")
    resources.register(
        deps, caller, resource_type="Directory", name="s", source=str(src), tags={"B": "1"}
    )
    rule = {
        "RuleName": "nightly",
        "TargetBackupVaultName": "main",
        "ScheduleExpression": "cron(0 5 ? * * *)",
        "Lifecycle": {"DeleteAfterDays": 1},
    }
    plan = plans.create(deps, caller, {"BackupPlanName": "p", "Rules": [rule]})
    tag = {"ConditionType": "STRINGEQUALS", "ConditionKey": "B", "ConditionValue": "1"}
    selections.create(
        deps,
        caller,
        str(plan["backup_plan_id"]),
        {"SelectionName": "s", "IamRoleArn": ROLE, "ListOfTags": [tag]},
    )


def test_a_scheduled_job_and_the_expiry_sweep_reach_the_trail(
    deps: Deps, caller: Caller, clock: FakeClock, tmp_path: Path
) -> None:
    records: list[dict[str, Any]] = []
    settable = simulation.SettableClock(clock.now(), SystemClock())
    deps = replace(deps, clock=settable, trail=records.append)
    _scheduled_world(deps, caller, tmp_path)
    worker = runner.Worker(deps, runner.WorkerOptions(threads=0, lease_seconds=60))
    # 2026-01-01 05:00 the job is planned and run; 2026-01-02 05:00 its point expires
    # (DeleteAfterDays 1) while the next day's job runs; then the vault is pruned
    simulation.advance(
        deps, settable, datetime(2026, 1, 2, 6, tzinfo=UTC), lambda: simulation.drain(worker)
    )
    names = [r["eventName"] for r in records]
    assert names[:3] == ["BackupJobCreated", "BackupJobStarted", "BackupJobCompleted"]
    assert "RecoveryPointExpired" in names and "BackupVaultPruned" in names
    for rec in records:
        assert rec["eventType"] == "AwsServiceEvent"
        assert rec["userIdentity"] == {
            "type": "AWSService",
            "invokedBy": "backup.amazonaws.com",
            "accountId": caller.account_id,
        }
        assert rec["awsRegion"] == "us-east-1" and rec["recipientAccountId"] == caller.account_id
    done = records[2]["serviceEventDetails"]
    assert (
        done["state"] == "COMPLETED"
        and done["backupJobId"] == records[0]["serviceEventDetails"]["backupJobId"]
    )
    expired = next(r for r in records if r["eventName"] == "RecoveryPointExpired")
    assert expired["serviceEventDetails"]["recoveryPointArn"] == done["recoveryPointArn"]
    assert expired["eventTime"].startswith("2026-01-02T05:")


def test_no_trail_configured_records_nothing_and_a_broken_one_fails_nothing(
    deps: Deps, caller: Caller
) -> None:
    vault = vaults.create(deps, caller, "v")
    trail.sweep_done(deps, "prune", [str(vault["arn"])], caller.now)  # deps.trail is None

    def broken(record: dict[str, Any]) -> None:
        raise OSError("disk full")

    trail.sweep_done(replace(deps, trail=broken), "prune", [str(vault["arn"])], caller.now)
    seen: list[dict[str, Any]] = []
    trail.sweep_done(replace(deps, trail=seen.append), "prune", ["not-an-arn"], caller.now)
    assert seen == []  # nothing to file it under


def test_restore_and_copy_jobs_are_recorded_with_their_ids_and_states(
    deps: Deps, caller: Caller, tmp_path: Path
) -> None:
    records: list[dict[str, Any]] = []
    deps = replace(deps, trail=records.append)
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_bytes(b"data" * 100)
    vaults.create(deps, caller, "v")
    copy_to = vaults.create(deps, caller, "copy-to")
    arn = resources.register(deps, caller, resource_type="Directory", name="s", source=str(src))
    worker = runner.Worker(deps, runner.WorkerOptions(worker_id="w1"))
    backup_jobs.start(deps, caller, backup_jobs.StartRequest("v", str(arn["arn"]), ROLE))
    assert worker.run_once() == "COMPLETED"
    no_filter = catalog.recovery_points.RecoveryPointFilters()
    (point,) = recovery_points.list_by_vault(deps, caller, "v", no_filter).items
    restore = restore_jobs.start(
        deps, caller, recovery_point_arn=point.arn, metadata={"targetPath": str(tmp_path / "o")}
    )
    assert worker.run_once() == "COMPLETED"
    copy_jobs.start(deps, caller, copy_jobs.StartRequest(point.arn, "v", str(copy_to["arn"]), ROLE))
    assert worker.run_once() == "COMPLETED"
    names = [r["eventName"] for r in records]
    assert names == [
        "BackupJobStarted",
        "BackupJobCompleted",
        "RestoreJobStarted",
        "RestoreJobCompleted",
        "CopyJobStarted",
        "CopyJobCompleted",
    ]
    restored = records[3]["serviceEventDetails"]
    assert restored["state"] == "COMPLETED" and restored["restoreJobId"] == restore.restore_job_id
    copied = records[5]["serviceEventDetails"]
    assert copied["state"] == "COMPLETED" and copied["destinationBackupVaultArn"] == copy_to["arn"]
