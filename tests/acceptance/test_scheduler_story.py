"""The scheduler story with boto3 against `snowvault server --test-mode`, whose clock the
test moves with POST /_snowvault/clock: a daily rule over a simulated month and a restart,
a resource tagged mid-month, expiry on day 36 with prune, a job past its start window.

boto3 signs with the wall clock throughout: SigV4 freshness is checked against the wall
clock whatever the simulated one says.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from helpers.sv_server import ServerProcess, move_clock, new_server

ROLE = "arn:aws:iam::{account}:role/service-role/AWSBackupDefaultServiceRole"
START = datetime(2031, 3, 1, tzinfo=UTC)  # later than any real "now" the server starts at


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = new_server(tmp_path_factory)
    server.init(lease_seconds=30, sweep_seconds=1, poll_seconds=0.2)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def move(server: ServerProcess, **body: Any) -> dict[str, Any]:
    return move_clock(server, **body)


def _dir(root: Path, name: str, day: int = 0) -> str:
    path = root / name
    path.mkdir(parents=True, exist_ok=True)
    (path / "data.txt").write_text(f"{name} {day}\n" * 2000)
    return str(path)


def _jobs(backup: Any, **filters: Any) -> list[dict[str, Any]]:
    pages = backup.get_paginator("list_backup_jobs").paginate(**filters)
    return [j for page in pages for j in page["BackupJobs"]]


def _a_month_of_daily_backups(server: ServerProcess, tmp_path: Path) -> None:
    move(server, now=START.isoformat())
    backup = server.client()
    role = ROLE.format(account=server.creds["account_id"])
    backup.create_backup_vault(BackupVaultName="main")
    arns = {}
    for name, tags in (("alpha", {"Backup": "true"}), ("beta", {"Backup": "true"}), ("gamma", {})):
        arns[name] = server.ext(
            "RegisterResource",
            {
                "ResourceType": "Directory",
                "Name": name,
                "Source": _dir(tmp_path, name),
                "Tags": tags,
            },
        )["ResourceArn"]
    plan = backup.create_backup_plan(
        BackupPlan={
            "BackupPlanName": "daily-35",
            "Rules": [
                {
                    "RuleName": "daily",
                    "TargetBackupVaultName": "main",
                    "ScheduleExpression": "cron(0 5 ? * * *)",
                    "StartWindowMinutes": 60,
                    "CompletionWindowMinutes": 180,
                    "Lifecycle": {"DeleteAfterDays": 35},
                }
            ],
        }
    )
    pid = plan["BackupPlanId"]
    backup.create_backup_selection(
        BackupPlanId=pid,
        BackupSelection={
            "SelectionName": "tagged",
            "IamRoleArn": role,
            "ListOfTags": [
                {
                    "ConditionType": "STRINGEQUALS",
                    "ConditionKey": "Backup",
                    "ConditionValue": "true",
                }
            ],
        },
    )
    preview = backup.get_backup_plan(BackupPlanId=pid, MaxScheduledRunsPreview=2)
    assert [r["ExecutionTime"] for r in preview["ScheduledRunsPreview"]] == [
        START.replace(hour=5),
        START.replace(hour=5) + timedelta(days=1),
    ]
    matched = server.ext(
        "PreviewSelection",
        {
            "BackupPlanId": pid,
            "SelectionId": backup.list_backup_selections(BackupPlanId=pid)["BackupSelectionsList"][
                0
            ]["SelectionId"],
        },
    )
    assert [r["ResourceArn"] for r in matched["Resources"] if r["Selected"]] == sorted(
        [arns["alpha"], arns["beta"]]
    )

    # days 1-14 (March 1..14), then gamma gets tagged, then a restart, then to day 30
    for day in range(1, 15):
        _dir(tmp_path, "alpha", day)  # new data every day, so expiry frees something
        move(server, now=(START + timedelta(days=day - 1, hours=6)).isoformat())
    server.ext("TagResource", {"ResourceArn": arns["gamma"], "Tags": {"Backup": "true"}})
    server.stop()
    server.start()
    move(server, now=(START + timedelta(days=29, hours=6)).isoformat())

    jobs = _jobs(backup, ByBackupVaultName="main")
    per_resource_day = [
        (j["ResourceArn"], (j["StartBy"] - timedelta(hours=1)).date()) for j in jobs
    ]
    assert len(per_resource_day) == len(set(per_resource_day))  # exactly once
    assert sum(1 for a, _ in per_resource_day if a == arns["alpha"]) == 30
    assert sum(1 for a, _ in per_resource_day if a == arns["beta"]) == 30
    gamma_days = sorted(d for a, d in per_resource_day if a == arns["gamma"])
    assert gamma_days[0] == (START + timedelta(days=14)).date()  # the day after tagging
    assert len(gamma_days) == 16
    assert {j["State"] for j in jobs} == {"COMPLETED"}
    assert {j["CreatedBy"]["BackupPlanId"] for j in jobs} == {pid}
    assert all(j["CreatedBy"]["BackupRuleId"] and j["ExpectedCompletionDate"] for j in jobs)
    described = backup.describe_protected_resource(ResourceArn=arns["alpha"])
    assert described["LastBackupTime"] >= START + timedelta(days=29, hours=5)


def _expiry_on_day_36_prunes_the_data(server: ServerProcess) -> None:
    backup = server.client()
    alpha = next(
        r for r in backup.list_protected_resources()["Results"] if r["ResourceName"] == "alpha"
    )
    before = backup.list_recovery_points_by_resource(ResourceArn=alpha["ResourceArn"])
    oldest = min(p["CreationDate"] for p in before["RecoveryPoints"])
    assert oldest == START.replace(hour=5)
    storage = server.data_dir / "storage"
    size_before = sum(f.stat().st_size for f in storage.rglob("*") if f.is_file())
    # day 36 = 35 days after the first backup at 05:00
    doc = move(server, now=(START + timedelta(days=35, hours=6)).isoformat())
    assert doc["RecoveryPointsExpired"] >= 2
    after = backup.list_recovery_points_by_resource(ResourceArn=alpha["ResourceArn"])
    created = sorted(p["CreationDate"] for p in after["RecoveryPoints"])
    assert created[0] == START.replace(hour=5) + timedelta(days=1)
    size_after = sum(f.stat().st_size for f in storage.rglob("*") if f.is_file())
    assert size_after < size_before + 200_000  # pruned: old packs went while new ones came


def _a_job_past_its_start_window_is_expired(server: ServerProcess, tmp_path: Path) -> None:
    backup = server.client()
    arn = server.ext(
        "RegisterResource",
        {
            "ResourceType": "Directory",
            "Name": "on-host-b",
            "Source": _dir(tmp_path, "b"),
            "Tags": {"Backup": "true"},
            "WorkerLabel": "host-b",  # no worker for host-b is running
        },
    )["ResourceArn"]
    day = START + timedelta(days=36)
    move(server, now=day.replace(hour=5, minute=30).isoformat())
    (waiting,) = [j for j in _jobs(backup, ByResourceArn=arn) if j["State"] == "CREATED"]
    assert waiting["StartBy"] == day.replace(hour=6)
    move(server, now=day.replace(hour=6, minute=1).isoformat())
    (expired,) = [
        j for j in _jobs(backup, ByResourceArn=arn) if j["StartBy"] == day.replace(hour=6)
    ]
    assert expired["State"] == "EXPIRED"
    assert "start window" in expired["StatusMessage"]


def test_scheduler_story(server: ServerProcess, tmp_path: Path) -> None:
    """One story, in order (the steps share the server and its simulated time)."""
    _a_month_of_daily_backups(server, tmp_path)
    _expiry_on_day_36_prunes_the_data(server)
    _a_job_past_its_start_window_is_expired(server, tmp_path)
