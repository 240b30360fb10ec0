"""What the scheduler does, as use cases: turn due rule occurrences into backup jobs
(exactly once per rule, occurrence and resource), expire and abort jobs by their
windows, move recovery points to cold storage (expiry at DeleteAt is services/expiry.py).

The scheduler layer only decides WHEN to call these (scheduler/sweepers.py lists the
sweeps and their order; a tick, a loop, the test clock run them).

    result = scheduling.plan_due(deps, now)        # jobs for every due occurrence
    scheduling.expire_unstarted(deps, now)         # EXPIRED (start window passed)
    scheduling.abort_overdue(deps, now)            # ABORTING (completion window passed)
    scheduling.move_to_cold(deps, now)             # cold transitions

Must not depend on the scheduler, the composition root or any interface.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from snowvault.control import catalog
from snowvault.control.catalog.db import Record
from snowvault.control.model import jobs as job_rules
from snowvault.control.model import plans as plan_rules
from snowvault.control.model import schedule as schedule_rules
from snowvault.control.model import windows
from snowvault.control.services import (
    backup_jobs,
    notifications,
    plans,
    selections,
    trail,
    vaults,
)
from snowvault.control.services.base import Deps
from snowvault.core import ids
from snowvault.core.errors import NotFound

log = logging.getLogger("snowvault.scheduler")

COLD = "COLD"


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
        result.jobs += plan_scope(deps, account_id, region, rules, now)
        result.rules += len(rules)
    return result


@dataclass
class _RulePlan:
    """One due rule's occurrences over its resolved targets, before the ledger decides."""

    row: Record
    rule: plan_rules.BackupRule
    vault: Record | None
    targets: Mapping[str, tuple[Record, str | None]]
    next_run: datetime | None
    runs: list[Record]
    created_by: Record = field(init=False)
    recovery_point_tags: dict[str, str] = field(init=False)
    _deadlines: dict[datetime, windows.JobDeadlines] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.created_by = {
            "BackupPlanId": self.row["backup_plan_id"],
            "BackupPlanArn": self.row["plan_arn"],
            "BackupPlanVersion": self.row["version_id"],
            "BackupRuleId": self.row["rule_id"],
        }
        self.recovery_point_tags = dict(self.rule.recovery_point_tags)

    def deadlines(self, scheduled_at: datetime) -> windows.JobDeadlines:
        """StartBy and complete-by of one occurrence (the same for all its resources)."""
        if scheduled_at not in self._deadlines:
            self._deadlines[scheduled_at] = windows.deadlines(scheduled_at, self.rule.windows)
        return self._deadlines[scheduled_at]


def plan_scope(
    deps: Deps, account_id: str, region: str, rules: Sequence[Record], now: datetime
) -> list[str]:
    """Jobs for the due ``rules`` of one account and region, in ONE transaction: the
    inventory is read once, every selection resolves against it in memory, the ledger
    rows and the jobs go in as two bulk inserts. Returns the ids of the jobs THIS call
    created (another planner may have claimed some occurrences first)."""
    with catalog.db.transaction(deps.engine) as conn:
        inventory = catalog.selections.inventory(conn, account_id=account_id, region=region)
        index = selections.Inventory(inventory, deps.plugins.types())
        chosen = _selections_by_plan(conn, rules)
        vault_of = _vault_lookup(conn, account_id, region)
        plans_ = [_plan_rule(r, index, chosen, vault_of, now) for r in rules]
        by_job = {run["job_id"]: p for p in plans_ for run in p.runs}
        # one global order: two planners racing take the ledger's row locks alike
        runs = sorted(
            (run for p in plans_ for run in p.runs),
            key=lambda r: (r["rule_id"], r["scheduled_at"], r["resource_arn"]),
        )
        claimed = catalog.schedule_runs.claim_runs(conn, runs)
        rows = [_job_row(by_job[run["job_id"]], run, now) for run in claimed]
        catalog.schedule_runs.create_jobs(conn, rows)
        for plan_id in sorted({by_job[run["job_id"]].row["backup_plan_id"] for run in claimed}):
            catalog.plans.record_execution(conn, plan_id, now)
        for p in plans_:
            catalog.schedule_runs.advance_rule(
                conn, p.row["rule_id"], planned_until=now, next_run_at=p.next_run
            )
    for row in rows:  # the trail's BackupJobCreated (system action, after the commit)
        trail.job_changed(deps, "backup", row["job_id"], row, "CREATED", now)
    return [run["job_id"] for run in claimed]


def _plan_rule(
    rule_row: Record,
    index: selections.Inventory,
    chosen: Mapping[str, list[Record]],
    vault_of: Callable[[str], Record | None],
    now: datetime,
) -> _RulePlan:
    rule = _model_rule(rule_row)
    occurrences = plan_rules.due_occurrences(rule, rule_row["planned_until"], now)
    next_run = schedule_rules.next_run(rule.schedule, now, rule.schedule_expression_timezone)
    targets = index.resolve(chosen.get(rule_row["backup_plan_id"], [])) if occurrences else {}
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
    vault = vault_of(rule.target_backup_vault_name) if runs else None
    return _RulePlan(rule_row, rule, vault, targets, next_run, runs)


def _selections_by_plan(conn: Any, rules: Sequence[Record]) -> dict[str, list[Record]]:
    plan_ids = sorted({r["backup_plan_id"] for r in rules})
    out: dict[str, list[Record]] = defaultdict(list)
    for row in catalog.selections.for_plans(conn, plan_ids):
        out[row["backup_plan_id"]].append(row["document"])
    return out


def _vault_lookup(conn: Any, account_id: str, region: str) -> Callable[[str], Record | None]:
    """Vaults by name, each read once per planning pass (None: it does not exist)."""
    cache: dict[str, Record | None] = {}

    def lookup(name: str) -> Record | None:
        if name not in cache:
            cache[name] = _vault(conn, account_id, region, name)
        return cache[name]

    return lookup


def _vault(conn: Any, account_id: str, region: str, name: str) -> Record | None:
    try:
        return catalog.vaults.get(conn, account_id=account_id, region=region, name=name)
    except NotFound:
        return None


_RULES: dict[tuple[str, str], plan_rules.BackupRule] = {}
_RULES_MAX = 100_000


def _model_rule(rule_row: Record) -> plan_rules.BackupRule:
    """The validated rule of one plan version, parsed once per process: a version never
    changes (UpdateBackupPlan makes a new one), and parsing 200 cron rules each tick cost
    a tenth of a 10,000-job tick."""
    key = (rule_row["rule_id"], rule_row["version_id"])
    rule = _RULES.get(key)
    if rule is None:
        if len(_RULES) >= _RULES_MAX:
            _RULES.clear()
        rule = _RULES[key] = plans.model_rule(rule_row["document"])
    return rule


def _job_row(plan: _RulePlan, run: Record, now: datetime) -> Record:
    """The backup_jobs row of one scheduled run (FAILED at once if the vault is gone),
    built by the one job constructor. Rows of one rule share its documents (created_by,
    tags, lifecycle) as objects."""
    resource, role = plan.targets[run["resource_arn"]]
    rule_row, vault = plan.row, plan.vault
    vault_name = plan.rule.target_backup_vault_name
    region, account = rule_row["region"], rule_row["account_id"]
    job = job_rules.new_backup_job(
        job_id=run["job_id"],
        account_id=account,
        region=region,
        target=backup_jobs.target(
            resource,
            vault,
            vault_name=vault_name,
            vault_arn=vaults.vault_arn(region, account, vault_name),
        ),
        now=now,
        deadlines=plan.deadlines(run["scheduled_at"]),
        recovery_point_arn=backup_jobs.recovery_point_arn(region, account),
        iam_role_arn=role,
        lifecycle=rule_row["document"].get("Lifecycle"),
        recovery_point_tags=plan.recovery_point_tags,
        plan=job_rules.PlanRef(
            plan_id=rule_row["backup_plan_id"],
            plan_arn=rule_row["plan_arn"],
            version_id=rule_row["version_id"],
            rule_id=rule_row["rule_id"],
            created_by=plan.created_by,
        ),
        vault_missing=vault is None,
    )
    return job.as_row()


# --- windows ---------------------------------------------------------------------------


def expire_unstarted(deps: Deps, now: datetime) -> list[str]:
    """Waiting backup jobs past StartBy become EXPIRED; returns their ids."""
    with catalog.db.transaction(deps.engine) as conn:
        expired = catalog.jobs.expire_unstarted(conn, now)
    for job_id in expired:  # BACKUP_JOB_EXPIRED (the one state change outside JobKind)
        notifications.job_changed(deps, "backup", catalog.jobs.QUEUE.spec, job_id)
    return expired


def abort_overdue(deps: Deps, now: datetime) -> list[str]:
    """Running backup jobs past their completion window are asked to stop (ABORTING; the
    worker ends them ABORTED at its next heartbeat). The one place that window is
    checked; returns the job ids."""
    with catalog.db.transaction(deps.engine) as conn:
        return catalog.schedule_runs.abort_overdue(conn, now)


# --- lifecycle -------------------------------------------------------------------------


def move_to_cold(deps: Deps, now: datetime, *, batch: int = 1000) -> list[str]:
    """Record the cold transitions that have come; returns the recovery point ARNs. A
    point already past its DeleteAt is left to the expiry (a hold or lock may keep it,
    it does not move). Each transition leaves a ``lifecycle_runs`` record."""
    with catalog.db.transaction(deps.engine) as conn:
        cold = catalog.recovery_points.list_due_for_cold(conn, before=now, limit=batch)
    return [
        rp.arn
        for rp in cold
        if (rp.delete_at is None or rp.delete_at > now) and _move_to_cold(deps, rp, now)
    ]


def _start(
    conn: Any, rp: job_rules.RecoveryPoint, action: str, due_at: datetime, now: datetime
) -> bool:
    return catalog.schedule_runs.start_lifecycle_run(
        conn,
        recovery_point_arn=rp.arn,
        action=action,
        due_at=due_at,
        now=now,
        backup_vault_arn=rp.backup_vault_arn,
    )


def _move_to_cold(deps: Deps, rp: job_rules.RecoveryPoint, now: datetime) -> bool:
    """Record the COLD storage class (the data move itself comes with storage tiers)."""
    with catalog.db.transaction(deps.engine) as conn:
        due = rp.move_to_cold_at
        if due is None or not _start(conn, rp, COLD, due, now):  # listed as due: never None
            return False
        catalog.recovery_points.set_storage_class(conn, rp.arn, "COLD")
        catalog.schedule_runs.finish_lifecycle_run(
            conn, recovery_point_arn=rp.arn, action=COLD, status="COMPLETED", now=now
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
