"""What the scheduler does, as use cases: turn due rule occurrences into backup jobs
(exactly once per rule, occurrence and resource), expire and abort jobs by their
windows, move recovery points to cold storage and expire them at DeleteAt.

The scheduler layer only decides WHEN to call these (a tick, a loop, the test clock).

    result = scheduling.plan_due(deps, now)        # jobs for every due occurrence
    scheduling.enforce_windows(deps, now)          # EXPIRED / ABORTING
    scheduling.run_lifecycle(deps, now)            # cold transitions, expiries

Must not depend on the scheduler, the composition root or any interface.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from snowvault.control import catalog
from snowvault.control.model import plans as plan_rules
from snowvault.control.model import schedule as schedule_rules
from snowvault.control.model import windows
from snowvault.control.services import (
    backup_jobs,
    plans,
    recovery_points,
    selections,
    vault_lock,
    vaults,
)
from snowvault.control.services.base import Deps
from snowvault.core import ids
from snowvault.core.errors import NotFound, SnowvaultError
from snowvault.engine import prune

log = logging.getLogger("snowvault.scheduler")

Record = dict[str, Any]
COLD = "COLD"
EXPIRE = "EXPIRE"


@dataclass
class PlanResult:
    """What one planning pass did."""

    rules: int = 0
    jobs: list[str] = field(default_factory=list)
    skipped_occurrences: int = 0


# --- planning --------------------------------------------------------------------------


def plan_due(deps: Deps, now: datetime) -> PlanResult:
    """Create the jobs of every rule occurrence due at ``now`` (safe to run anywhere,
    any number of times: the run ledger makes each (rule, occurrence, resource) once)."""
    result = PlanResult()
    with catalog.db.transaction(deps.engine) as conn:
        due = catalog.schedule_runs.due_rules(conn, now)
    by_scope: dict[tuple[str, str], list[Record]] = defaultdict(list)
    for rule in due:
        by_scope[(rule["account_id"], rule["region"])].append(rule)
    for (account_id, region), rules in by_scope.items():
        with catalog.db.transaction(deps.engine) as conn:
            inventory = catalog.selections.inventory(conn, account_id=account_id, region=region)
            chosen = _selections_by_plan(conn, rules)
        index = selections.Inventory(inventory)
        for rule in rules:
            targets = index.resolve(chosen.get(rule["backup_plan_id"], []))
            result.jobs += plan_rule(deps, rule, targets, now)
            result.rules += 1
    return result


def _selections_by_plan(conn: Any, rules: Sequence[Record]) -> dict[str, list[Record]]:
    plan_ids = sorted({r["backup_plan_id"] for r in rules})
    out: dict[str, list[Record]] = defaultdict(list)
    for row in catalog.selections.for_plans(conn, plan_ids):
        out[row["backup_plan_id"]].append(row["document"])
    return out


def plan_rule(
    deps: Deps,
    rule_row: Record,
    targets: Mapping[str, tuple[Record, str | None]],
    now: datetime,
) -> list[str]:
    """Jobs for one rule's due occurrences over ``targets`` (ARN -> (resource, role));
    returns the ids of the jobs THIS call created."""
    rule = plans.model_rule(rule_row["document"])
    occurrences = plan_rules.due_occurrences(rule, rule_row["planned_until"], now)
    next_run = schedule_rules.next_run(rule.schedule, now, rule.schedule_expression_timezone)
    created: list[str] = []
    with catalog.db.transaction(deps.engine) as conn:
        if occurrences and targets:
            vault = _vault(conn, rule_row, rule)
            runs = [
                {
                    "rule_id": rule_row["rule_id"],
                    "scheduled_at": at,
                    "resource_arn": arn,
                    "job_id": ids.new_uuid(),
                    "created_at": now,
                }
                for at in occurrences
                for arn in sorted(targets)
            ]
            rows = []
            for run in catalog.schedule_runs.claim_runs(conn, runs):
                resource, role = targets[run["resource_arn"]]
                rows.append(_job_row(run, rule_row, rule, vault, resource, role, now))
                created.append(run["job_id"])
            catalog.schedule_runs.create_jobs(conn, rows)
            if created:
                catalog.plans.record_execution(conn, rule_row["backup_plan_id"], now)
        catalog.schedule_runs.advance_rule(
            conn, rule_row["rule_id"], planned_until=now, next_run_at=next_run
        )
    return created


def _vault(conn: Any, rule_row: Record, rule: plan_rules.BackupRule) -> Record | None:
    try:
        return catalog.vaults.get(
            conn,
            account_id=rule_row["account_id"],
            region=rule_row["region"],
            name=rule.target_backup_vault_name,
        )
    except NotFound:
        return None


def _job_row(
    run: Record,
    rule_row: Record,
    rule: plan_rules.BackupRule,
    vault: Record | None,
    resource: Record,
    role: str | None,
    now: datetime,
) -> Record:
    """The backup_jobs row of one scheduled run (FAILED at once if the vault is gone)."""
    due = windows.deadlines(run["scheduled_at"], rule.windows)
    vault_name = rule.target_backup_vault_name
    region, account = rule_row["region"], rule_row["account_id"]
    missing = vault is None
    return {
        "job_id": run["job_id"],
        "account_id": account,
        "region": region,
        "backup_vault_name": vault_name,
        "backup_vault_arn": vaults.vault_arn(region, account, vault_name)
        if vault is None
        else vault["arn"],
        "vault_type": None if vault is None else vault["vault_type"],
        "resource_arn": resource["arn"],
        "resource_type": resource["resource_type"],
        "resource_name": resource["name"],
        "worker_label": resource["worker_label"],
        "state": "FAILED" if missing else "CREATED",
        "status_message": f"backup vault {vault_name} does not exist" if missing else None,
        "message_category": "MISSING_VAULT" if missing else None,
        "creation_date": now,
        "initiation_date": now,
        "completion_date": now if missing else None,
        "start_by": due.start_by,
        "expected_completion_date": due.complete_by,
        "iam_role_arn": role,
        "backup_type": "FULL",
        "backup_plan_id": rule_row["backup_plan_id"],
        "backup_plan_arn": rule_row["plan_arn"],
        "backup_plan_version": rule_row["version_id"],
        "backup_rule_id": rule_row["rule_id"],
        "created_by": {
            "BackupPlanId": rule_row["backup_plan_id"],
            "BackupPlanArn": rule_row["plan_arn"],
            "BackupPlanVersion": rule_row["version_id"],
            "BackupRuleId": rule_row["rule_id"],
        },
        "lifecycle": rule_row["document"].get("Lifecycle"),
        "recovery_point_tags": dict(rule.recovery_point_tags),
        "recovery_point_arn": backup_jobs.recovery_point_arn(region, account),
        "encryption_key_arn": None if vault is None else vault["encryption_key_arn"],
        "percent_done": 0.0,
        "bytes_transferred": 0,
    }


# --- windows ---------------------------------------------------------------------------


def enforce_windows(deps: Deps, now: datetime) -> tuple[list[str], list[str]]:
    """Waiting jobs past StartBy become EXPIRED; running ones past their completion
    window are asked to stop. Returns (expired ids, aborting ids)."""
    with catalog.db.transaction(deps.engine) as conn:
        expired = catalog.jobs.expire_unstarted(conn, now)
        aborting = catalog.schedule_runs.abort_overdue(conn, now)
    return expired, aborting


# --- lifecycle -------------------------------------------------------------------------


@dataclass
class LifecycleResult:
    cold: list[str] = field(default_factory=list)
    expired: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    pruned_vaults: list[str] = field(default_factory=list)


def run_lifecycle(deps: Deps, now: datetime, *, batch: int = 1000) -> LifecycleResult:
    """Record cold transitions and expire recovery points whose DeleteAt has come, then
    prune the vaults that lost data. Each action leaves a ``lifecycle_runs`` record."""
    result = LifecycleResult()
    with catalog.db.transaction(deps.engine) as conn:
        cold = catalog.recovery_points.list_due_for_cold(conn, before=now, limit=batch)
        expiring = catalog.recovery_points.list_due_for_deletion(conn, before=now, limit=batch)
    expiring_arns = {rp["arn"] for rp in expiring}
    for rp in cold:
        if rp["arn"] not in expiring_arns and _move_to_cold(deps, rp, now):
            result.cold.append(rp["arn"])
    for rp in expiring:
        if not vault_lock.may_expire(deps, rp, now).allowed:
            continue  # a legal hold or the vault lock keeps it; a later run retries
        outcome = _expire(deps, rp, now)
        if outcome is True:
            result.expired.append(rp["arn"])
        elif outcome is False:
            result.failed.append(rp["arn"])
    if result.expired:
        result.pruned_vaults = recovery_points.prune_pending(deps)
    return result


def _start(conn: Any, rp: Record, action: str, due_at: datetime, now: datetime) -> bool:
    return catalog.schedule_runs.start_lifecycle_run(
        conn,
        recovery_point_arn=rp["arn"],
        action=action,
        due_at=due_at,
        now=now,
        backup_vault_arn=rp["backup_vault_arn"],
    )


def _move_to_cold(deps: Deps, rp: Record, now: datetime) -> bool:
    """Record the COLD storage class (the data move itself comes with storage tiers)."""
    with catalog.db.transaction(deps.engine) as conn:
        if not _start(conn, rp, COLD, rp["move_to_cold_at"], now):
            return False
        catalog.recovery_points.set_storage_class(conn, rp["arn"], "COLD")
        catalog.schedule_runs.finish_lifecycle_run(
            conn, recovery_point_arn=rp["arn"], action=COLD, status="COMPLETED", now=now
        )
    return True


def _expire(deps: Deps, rp: Record, now: datetime) -> bool | None:
    """Forget the point in its vault's repository, drop it from the catalog, mark the
    vault for prune. None if another sweeper owns it; False if it failed (retried)."""
    with catalog.db.transaction(deps.engine) as conn:
        if not _start(conn, rp, EXPIRE, rp["delete_at"], now):
            return None
        catalog.recovery_points.set_status(conn, rp["arn"], "DELETING", "expired by lifecycle")
        vault = catalog.vaults.get_by_arn(conn, rp["backup_vault_arn"])
    try:
        with vaults.open_repository(deps, vault) as repo:
            if rp["engine_recovery_point_id"] in repo.list_manifests():
                prune.forget(repo, [rp["engine_recovery_point_id"]])
    except (SnowvaultError, OSError) as exc:
        log.warning("expiring %s failed, will retry: %s", rp["arn"], exc)
        with catalog.db.transaction(deps.engine) as conn:
            catalog.recovery_points.set_status(conn, rp["arn"], rp["status"], str(exc))
            catalog.schedule_runs.retry_lifecycle_run(
                conn, recovery_point_arn=rp["arn"], action=EXPIRE
            )
        return False
    with catalog.db.transaction(deps.engine) as conn:
        catalog.recovery_points.delete(conn, rp["arn"])
        catalog.settings.put(conn, vaults.prune_key(vault["arn"]), now.isoformat())
        catalog.schedule_runs.finish_lifecycle_run(
            conn, recovery_point_arn=rp["arn"], action=EXPIRE, status="COMPLETED", now=now
        )
    return True


# --- what comes next -------------------------------------------------------------------


def next_event(deps: Deps, *, after: datetime) -> datetime | None:
    """The earliest instant after ``after`` at which a rule runs or a lifecycle action
    falls due."""
    with catalog.db.transaction(deps.engine) as conn:
        found = [
            catalog.schedule_runs.next_rule_run(conn, after=after),
            catalog.schedule_runs.next_lifecycle_event(conn, after=after),
        ]
    values = [v for v in found if v is not None]
    return min(values) if values else None


def runnable_jobs(deps: Deps, now: datetime) -> int:
    with catalog.db.transaction(deps.engine) as conn:
        return catalog.schedule_runs.count_runnable_jobs(conn, now)


TEST_CLOCK_KEY = "test-mode-clock"


def save_test_clock(deps: Deps, when: datetime) -> None:
    """Test mode: remember the simulated time, so a restarted server continues from it."""
    with catalog.db.transaction(deps.engine) as conn:
        catalog.settings.put(conn, TEST_CLOCK_KEY, when.isoformat())


def saved_test_clock(deps: Deps) -> datetime | None:
    with catalog.db.transaction(deps.engine) as conn:
        value = catalog.settings.get(conn, TEST_CLOCK_KEY)
    return None if value is None else datetime.fromisoformat(value)
