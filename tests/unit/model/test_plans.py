"""Backup rule/plan validation and the occurrences a planner must turn into jobs."""

from __future__ import annotations

import doctest
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import pytest

from snowvault.control.model import lifecycle, plans, schedule, selection, windows
from snowvault.core.errors import InvalidInput

VAULT_ARN = "arn:aws:backup:eu-west-1:123456789012:backup-vault:offsite"


def rule(**fields: Any) -> dict[str, Any]:
    return {"RuleName": "daily", "TargetBackupVaultName": "main", **fields}


def validate(data: dict[str, Any], **kw: Any) -> plans.BackupRule:
    kw.setdefault("continuous_capable_types", ("postgresql",))
    return plans.validate_rule(data, **kw)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize("module", [schedule, lifecycle, windows, selection, plans])
def test_module_docstring_examples(module: ModuleType) -> None:
    result = doctest.testmod(module)
    assert result.attempted > 0
    assert result.failed == 0


def test_defaults() -> None:
    r = validate(rule())
    assert r.schedule_expression == "cron(0 5 ? * * *)"
    assert r.schedule_expression_timezone == "UTC"
    assert r.windows == windows.Windows(480, 10_080)
    assert r.lifecycle is None and r.copy_actions == () and not r.enable_continuous_backup


def test_full_rule() -> None:
    r = validate(
        rule(
            ScheduleExpression="cron(0 2 ? * SUN *)",
            ScheduleExpressionTimezone="Europe/Berlin",
            StartWindowMinutes=60,
            CompletionWindowMinutes=240,
            Lifecycle={"MoveToColdStorageAfterDays": 30, "DeleteAfterDays": 365},
            RecoveryPointTags={"team": "db"},
            CopyActions=[
                {"DestinationBackupVaultArn": VAULT_ARN, "Lifecycle": {"DeleteAfterDays": 30}}
            ],
        )
    )
    assert isinstance(r.schedule, schedule.CronSchedule)
    assert r.windows == windows.Windows(60, 240)
    assert r.lifecycle == lifecycle.Lifecycle(30, 365)
    assert r.recovery_point_tags == (("team", "db"),)
    assert r.copy_actions == (plans.CopyAction(VAULT_ARN, lifecycle.Lifecycle(None, 30)),)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"RuleName": ""}, "RuleName: must be 1 to 50"),
        ({"RuleName": "x" * 51}, "RuleName: must be 1 to 50"),
        ({"RuleName": "daily backup"}, "RuleName: must be 1 to 50"),
        ({"TargetBackupVaultName": "m"}, "TargetBackupVaultName: must be 2 to 50"),
        ({"TargetBackupVaultName": "a.b"}, "TargetBackupVaultName: must be 2 to 50"),
        ({"ScheduleExpression": "cron(0 5 * * * *)"}, "ScheduleExpression: day-of-month and"),
        ({"ScheduleExpression": "cron(0/30 * * * ? *)"}, "ScheduleExpression: the interval"),
        ({"ScheduleExpression": "rate(30 minutes)"}, "ScheduleExpression: the interval"),
        ({"ScheduleExpressionTimezone": "Nowhere/City"}, "ScheduleExpressionTimezone: unknown"),
        ({"StartWindowMinutes": 30}, "StartWindowMinutes: must be between 60"),
        ({"CompletionWindowMinutes": 100}, "CompletionWindowMinutes: must be greater"),
        (
            {"Lifecycle": {"MoveToColdStorageAfterDays": 10, "DeleteAfterDays": 20}},
            "Lifecycle.DeleteAfterDays: must be at least 90 days after",
        ),
        ({"RecoveryPointTags": {"a": 1}}, "RecoveryPointTags: must map string keys"),
        ({"CopyActions": {"DestinationBackupVaultArn": VAULT_ARN}}, "CopyActions: must be a list"),
        (
            {"CopyActions": [{}]},
            "CopyActions[0].DestinationBackupVaultArn: must be a backup vault ARN",
        ),
        (
            {"CopyActions": [{"DestinationBackupVaultArn": "arn:aws:s3:::bucket"}]},
            "CopyActions[0].DestinationBackupVaultArn",
        ),
        (
            {"CopyActions": [{"DestinationBackupVaultArn": VAULT_ARN, "Vault": "x"}]},
            "CopyActions[0]: unknown field(s): Vault",
        ),
        (
            {
                "CopyActions": [
                    {
                        "DestinationBackupVaultArn": VAULT_ARN,
                        "Lifecycle": {"MoveToColdStorageAfterDays": 5, "DeleteAfterDays": 6},
                    }
                ]
            },
            "CopyActions[0].Lifecycle.DeleteAfterDays: must be at least 90",
        ),
        ({"EnableContinuousBackup": "yes"}, "EnableContinuousBackup: must be a boolean"),
    ],
)
def test_invalid_rules_name_the_field(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput) as err:
        validate(rule(**fields))
    assert str(err.value).startswith(message)


def test_continuous_backup_needs_capable_types_and_short_retention() -> None:
    ok = rule(EnableContinuousBackup=True, Lifecycle={"DeleteAfterDays": 35})
    assert validate(ok, resource_types=["postgresql"]).enable_continuous_backup
    with pytest.raises(
        InvalidInput, match="EnableContinuousBackup: not supported for resource type"
    ):
        validate(ok, resource_types=["postgresql", "directory"])
    with pytest.raises(InvalidInput, match="EnableContinuousBackup: no resource type supports"):
        validate(ok, continuous_capable_types=())
    with pytest.raises(InvalidInput, match=r"Lifecycle\.DeleteAfterDays: continuous backups"):
        validate(rule(EnableContinuousBackup=True, Lifecycle={"DeleteAfterDays": 36}))
    with pytest.raises(InvalidInput, match=r"Lifecycle\.DeleteAfterDays: continuous backups"):
        validate(rule(EnableContinuousBackup=True))


def test_plan_validation() -> None:
    plan = plans.validate_plan(
        {"BackupPlanName": "p", "Rules": [rule(), rule(RuleName="weekly")]},
        continuous_capable_types=(),
    )
    assert [r.rule_name for r in plan.rules] == ["daily", "weekly"]
    with pytest.raises(InvalidInput, match=r"^Rules: duplicate RuleName\(s\): daily"):
        plans.validate_plan(
            {"BackupPlanName": "p", "Rules": [rule(), rule()]}, continuous_capable_types=()
        )
    with pytest.raises(InvalidInput, match=r"^Rules: must be a non-empty list"):
        plans.validate_plan({"BackupPlanName": "p", "Rules": []}, continuous_capable_types=())
    with pytest.raises(InvalidInput, match=r"^BackupPlanName"):
        plans.validate_plan({"BackupPlanName": "", "Rules": [rule()]}, continuous_capable_types=())


@pytest.mark.parametrize(
    ("fields", "last", "now", "expected"),
    [
        # Regular tick: the one occurrence in (last, now].
        ({}, "2026-01-01T04:59", "2026-01-01T05:00", ["2026-01-01T05:00"]),
        ({}, "2026-01-01T05:00", "2026-01-01T05:01", []),  # already planned
        # Downtime of 3 days: only occurrences whose start window is still open.
        ({}, "2026-01-01T00:00", "2026-01-03T12:00", ["2026-01-03T05:00"]),
        ({}, "2026-01-01T00:00", "2026-01-03T13:00", []),  # 05:00 + 480 min = 13:00: expired
        (
            {
                "StartWindowMinutes": 60,
                "CompletionWindowMinutes": 120,
                "ScheduleExpression": "cron(0 * * * ? *)",
            },
            "2026-01-01T00:00",
            "2026-01-01T10:30",
            ["2026-01-01T10:00"],
        ),
        (
            {
                "StartWindowMinutes": 180,
                "CompletionWindowMinutes": 300,
                "ScheduleExpression": "cron(0 * * * ? *)",
            },
            "2026-01-01T00:00",
            "2026-01-01T10:30",
            ["2026-01-01T08:00", "2026-01-01T09:00", "2026-01-01T10:00"],
        ),
        # The rule's own time zone applies; 02:30 does not exist on 2026-03-08 in New York.
        (
            {
                "ScheduleExpression": "cron(30 2 * * ? *)",
                "ScheduleExpressionTimezone": "America/New_York",
            },
            "2026-03-07T12:00",
            "2026-03-09T07:00",
            ["2026-03-09T06:30"],
        ),
    ],
)
def test_due_occurrences(fields: dict[str, Any], last: str, now: str, expected: list[str]) -> None:
    r = validate(rule(**fields))
    got = plans.due_occurrences(r, utc(last), utc(now))
    assert [d.strftime("%Y-%m-%dT%H:%M") for d in got] == expected


def test_due_occurrences_tiles_time_without_gaps_or_duplicates() -> None:
    r = validate(
        rule(
            ScheduleExpression="cron(7 * * * ? *)",
            StartWindowMinutes=60,
            CompletionWindowMinutes=90,
        )
    )
    start = utc("2026-01-01T00:00")
    seen: list[datetime] = []
    last = start
    for minute in range(1, 24 * 60 + 1, 13):  # ticks every 13 minutes
        now = start + timedelta(minutes=minute)
        seen += plans.due_occurrences(r, last, now)
        last = now
    assert seen == [
        start + timedelta(hours=h, minutes=7) for h in range(24) if h * 60 + 7 <= minute
    ]


def test_due_occurrences_refuses_naive_times() -> None:
    with pytest.raises(InvalidInput, match="now: must be a timezone-aware"):
        plans.due_occurrences(validate(rule()), utc("2026-01-01T00:00"), datetime(2026, 1, 2))
