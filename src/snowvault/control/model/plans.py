"""Backup plans and rules: validation of the API shapes and the occurrences due to run.

Pure rules: no I/O, no wall clock (``now`` is an argument). Builds on the sibling rule
modules (schedule, windows, lifecycle) and ``snowvault.core.errors`` only.

>>> from datetime import UTC
>>> rule = validate_rule({"RuleName": "daily", "TargetBackupVaultName": "main",
...     "ScheduleExpression": "cron(0 5 ? * * *)"}, continuous_capable_types=())
>>> [d.isoformat() for d in due_occurrences(rule, datetime(2026, 1, 1, tzinfo=UTC),
...                                          datetime(2026, 1, 3, 6, tzinfo=UTC))]
['2026-01-03T05:00:00+00:00']

(The 2026-01-01 and 01-02 runs are not returned: their 8-hour start windows closed.)

Rules (botocore BackupRuleInput and AWS Backup docs):

- RuleName ``^[a-zA-Z0-9\\-_.]{1,50}$``; TargetBackupVaultName ``^[a-zA-Z0-9\\-_]{2,50}$``.
- ScheduleExpression defaults to ``cron(0 5 ? * * *)``; the interval between backup
  jobs may not be under 60 minutes (AWS: "The interval between backup jobs shouldn't
  be less than 60 minutes"). ScheduleExpressionTimezone defaults to UTC.
- Windows and Lifecycle: see windows.py and lifecycle.py.
- CopyActions: a list of {DestinationBackupVaultArn (a backup-vault ARN, required),
  Lifecycle (optional)}.
- EnableContinuousBackup is refused unless every resource type concerned can do it
  (the capable set is an argument: plugins know it, this module does not). Continuous
  recovery points keep 1-35 days (DeleteAfterDays required in that range) and never
  move to cold storage.
- A plan has 1+ rules with unique names; BackupPlanName ``^[a-zA-Z0-9\\-_.]{1,50}$``.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from snowvault.control.model import lifecycle as lifecycle_rules
from snowvault.control.model import schedule as schedule_rules
from snowvault.control.model import windows as window_rules
from snowvault.core.errors import InvalidInput

DEFAULT_SCHEDULE = "cron(0 5 ? * * *)"
CONTINUOUS_MAX_RETENTION_DAYS = 35
_RULE_NAME_RE = re.compile(r"^[a-zA-Z0-9\-_.]{1,50}$")
_VAULT_NAME_RE = re.compile(r"^[a-zA-Z0-9\-_]{2,50}$")
_VAULT_ARN_RE = re.compile(
    r"^arn:[a-z0-9-]+:backup:[a-z0-9-]*:\d{12}:backup-vault:[a-zA-Z0-9\-_]{2,50}$"
)


def _invalid(field_name: str, detail: str) -> InvalidInput:
    return InvalidInput(f"{field_name}: {detail}", field=field_name, detail=detail)


@dataclass(frozen=True)
class CopyAction:
    destination_backup_vault_arn: str
    lifecycle: lifecycle_rules.Lifecycle | None = None


@dataclass(frozen=True)
class BackupRule:
    rule_name: str
    target_backup_vault_name: str
    schedule_expression: str = DEFAULT_SCHEDULE
    schedule_expression_timezone: str = "UTC"
    schedule: schedule_rules.Schedule = field(
        default_factory=lambda: schedule_rules.parse_schedule(DEFAULT_SCHEDULE)
    )
    windows: window_rules.Windows = field(default_factory=window_rules.Windows)
    lifecycle: lifecycle_rules.Lifecycle | None = None
    recovery_point_tags: tuple[tuple[str, str], ...] = ()
    copy_actions: tuple[CopyAction, ...] = ()
    enable_continuous_backup: bool = False
    rule_id: str | None = None


@dataclass(frozen=True)
class BackupPlan:
    backup_plan_name: str
    rules: tuple[BackupRule, ...]


# --------------------------------------------------------------------------- validation


def _name(value: object, field_name: str, pattern: re.Pattern[str], what: str) -> str:
    if not isinstance(value, str) or not pattern.match(value):
        raise _invalid(field_name, f"must be {what}, got {value!r}")
    return value


def _schedule(data: Mapping[str, Any]) -> tuple[str, str, schedule_rules.Schedule]:
    expression = data.get("ScheduleExpression") or DEFAULT_SCHEDULE
    tz = data.get("ScheduleExpressionTimezone") or "UTC"
    if not isinstance(tz, str):
        raise _invalid(schedule_rules.TZ_FIELD, "must be an IANA time zone name")
    schedule_rules.zone(tz)
    parsed = schedule_rules.parse_schedule(expression)
    if schedule_rules.fires_more_than_hourly(parsed):
        raise _invalid(
            schedule_rules.FIELD, "the interval between backup jobs must be at least 60 minutes"
        )
    return expression, tz, parsed


def _tags(value: object) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise _invalid("RecoveryPointTags", "must map string keys to string values")
    return tuple(sorted(value.items()))


def _copy_actions(value: object) -> tuple[CopyAction, ...]:
    if value is None:
        return ()
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise _invalid("CopyActions", "must be a list")
    actions = []
    for i, item in enumerate(value):
        where = f"CopyActions[{i}]"
        if not isinstance(item, Mapping):
            raise _invalid(where, "must be an object")
        unknown = set(item) - {"DestinationBackupVaultArn", "Lifecycle"}
        if unknown:
            raise _invalid(where, f"unknown field(s): {', '.join(sorted(unknown))}")
        arn = item.get("DestinationBackupVaultArn")
        if not isinstance(arn, str) or not _VAULT_ARN_RE.match(arn):
            raise _invalid(f"{where}.DestinationBackupVaultArn", "must be a backup vault ARN")
        lc = lifecycle_rules.lifecycle_from_api(item.get("Lifecycle"), f"{where}.Lifecycle")
        actions.append(CopyAction(arn, lc))
    return tuple(actions)


def _check_continuous(
    lifecycle: lifecycle_rules.Lifecycle | None,
    capable: Collection[str],
    resource_types: Collection[str] | None,
) -> None:
    where = "EnableContinuousBackup"
    if resource_types is None and not capable:
        raise _invalid(where, "no resource type supports continuous backup")
    refused = sorted(set(resource_types or ()) - set(capable))
    if refused:
        raise _invalid(where, f"not supported for resource type(s): {', '.join(refused)}")
    delete = lifecycle.delete_after_days if lifecycle else None
    if delete is None or delete > CONTINUOUS_MAX_RETENTION_DAYS:
        raise _invalid(
            "Lifecycle.DeleteAfterDays",
            f"continuous backups need a retention of 1 to {CONTINUOUS_MAX_RETENTION_DAYS} days",
        )
    if lifecycle is not None and lifecycle.move_to_cold_storage_after_days is not None:
        raise _invalid(
            "Lifecycle.MoveToColdStorageAfterDays", "continuous backups cannot move to cold"
        )


def validate_rule(
    data: Mapping[str, Any],
    *,
    continuous_capable_types: Collection[str],
    resource_types: Collection[str] | None = None,
) -> BackupRule:
    """Validate an API ``BackupRuleInput`` dict into a BackupRule.

    ``resource_types``: the types this rule will back up, when known (the plan's
    selections); with None, continuous backup is refused only if no type can do it.
    """
    if not isinstance(data, Mapping):
        raise _invalid("Rules", "each rule must be an object")
    name = _name(data.get("RuleName"), "RuleName", _RULE_NAME_RE, "1 to 50 of [a-zA-Z0-9-_.]")
    vault = _name(
        data.get("TargetBackupVaultName"),
        "TargetBackupVaultName",
        _VAULT_NAME_RE,
        "2 to 50 of [a-zA-Z0-9-_]",
    )
    expression, tz, parsed = _schedule(data)
    windows = window_rules.validate_windows(
        data.get("StartWindowMinutes"), data.get("CompletionWindowMinutes")
    )
    lc = lifecycle_rules.lifecycle_from_api(data.get("Lifecycle"))
    continuous = data.get("EnableContinuousBackup") or False
    if not isinstance(continuous, bool):
        raise _invalid("EnableContinuousBackup", "must be a boolean")
    if continuous:
        _check_continuous(lc, continuous_capable_types, resource_types)
    return BackupRule(
        rule_name=name,
        target_backup_vault_name=vault,
        schedule_expression=expression,
        schedule_expression_timezone=tz,
        schedule=parsed,
        windows=windows,
        lifecycle=lc,
        recovery_point_tags=_tags(data.get("RecoveryPointTags")),
        copy_actions=_copy_actions(data.get("CopyActions")),
        enable_continuous_backup=continuous,
        rule_id=data.get("RuleId"),
    )


def validate_plan(
    data: Mapping[str, Any],
    *,
    continuous_capable_types: Collection[str],
    resource_types: Collection[str] | None = None,
) -> BackupPlan:
    """Validate an API ``BackupPlanInput`` dict into a BackupPlan."""
    if not isinstance(data, Mapping):
        raise _invalid("BackupPlan", "must be an object")
    name = _name(
        data.get("BackupPlanName"), "BackupPlanName", _RULE_NAME_RE, "1 to 50 of [a-zA-Z0-9-_.]"
    )
    raw_rules = data.get("Rules")
    if not isinstance(raw_rules, Sequence) or isinstance(raw_rules, str) or not raw_rules:
        raise _invalid("Rules", "must be a non-empty list")
    rules = tuple(
        validate_rule(
            r, continuous_capable_types=continuous_capable_types, resource_types=resource_types
        )
        for r in raw_rules
    )
    names = [r.rule_name for r in rules]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise _invalid("Rules", f"duplicate RuleName(s): {', '.join(duplicates)}")
    return BackupPlan(name, rules)


# --------------------------------------------------------------------------- planning


def due_occurrences(
    rule: BackupRule, last_planned_until: datetime, now: datetime, tz: str | None = None
) -> list[datetime]:
    """Occurrences in (last_planned_until, now] whose start window is still open at ``now``.

    A planner turns each into a job and then records ``now`` as its new
    ``last_planned_until``. Occurrences whose start window closed while nobody planned
    (downtime) are skipped, never backfilled. ``tz`` defaults to the rule's time zone.
    """
    for name, value in (("last_planned_until", last_planned_until), ("now", now)):
        if value.tzinfo is None:
            raise InvalidInput(f"{name}: must be a timezone-aware datetime", field=name)
    earliest_open = now - rule.windows.start_window
    start = max(last_planned_until, earliest_open)
    zone = tz or rule.schedule_expression_timezone
    return schedule_rules.runs_between(rule.schedule, start, now, zone)
