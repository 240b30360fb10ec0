"""Backup jobs: StartBackupJob and friends, and running one job on a worker.

Start validates and queues (state CREATED, with StartBy and the RecoveryPointArn it will
produce); a worker claims it (RUNNING), backs the resource up into the vault's
repository under a shared repository lock, reporting progress, then in ONE transaction
records the recovery point and completes the job. A stop request, a crash (lease
expiry, handled by the sweeper) or an error ends the job ABORTED or FAILED, never
RUNNING forever.

What is read, and how, is the resource type's plugin's (``Deps.plugins``): it gets a
sink over the vault's repository (:mod:`snowvault.control.services.plugin_io`).

Abuse case: the source was checked against the host-path rule at RegisterResource, but
the tree can change before the job runs; the plugin resolves and checks it again right
before it reads (``Deps.path_policy``), and reads the resolved path.

Must not depend on the scheduler, the composition root or any interface.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Connection

from snowvault import plugins
from snowvault.control import catalog
from snowvault.control.model import jobs as job_rules
from snowvault.control.model import lifecycle, windows
from snowvault.control.model.jobs import BackupJob
from snowvault.control.services import composite, copy_jobs, jobs, plugin_io, vault_lock, vaults
from snowvault.control.services.base import Caller, Deps, JobControl
from snowvault.core import arn as arns
from snowvault.core import ids
from snowvault.core.errors import Conflict, InvalidInput, NotFound, SnowvaultError
from snowvault.engine import archiver

log = logging.getLogger("snowvault.jobs")

Record = catalog.db.Record
OPERATION = "StartBackupJob"
PERIODS = {"ONE_DAY": 1, "SEVEN_DAYS": 7, "FOURTEEN_DAYS": 14}


@dataclass(frozen=True)
class StartRequest:
    """StartBackupJob's input, as the services need it."""

    vault_name: str
    resource_arn: str
    iam_role_arn: str
    idempotency_token: str | None = None
    start_window_minutes: int | None = None
    complete_window_minutes: int | None = None
    lifecycle: Mapping[str, Any] | None = None
    recovery_point_tags: Mapping[str, str] | None = None
    backup_options: Mapping[str, str] | None = None


def recovery_point_arn(region: str, account_id: str) -> str:
    return arns.build("backup", region, account_id, f"recovery-point:{ids.new_uuid()}")


def start(deps: Deps, caller: Caller, req: StartRequest) -> BackupJob:
    """StartBackupJob: returns the job (the stored one for a repeated token)."""
    lc = lifecycle.lifecycle_from_api(req.lifecycle)
    wins = windows.validate_windows(
        req.start_window_minutes,
        req.complete_window_minutes,
        completion_field="CompleteWindowMinutes",
    )
    due = windows.deadlines(caller.now, wins)
    with catalog.db.transaction(deps.engine) as conn:
        if req.idempotency_token:
            seen = catalog.idempotency.lookup(
                conn, account_id=caller.account_id, operation=OPERATION, token=req.idempotency_token
            )
            if seen is not None:
                return catalog.jobs.get(conn, seen["BackupJobId"])
        vault = catalog.vaults.get(
            conn, account_id=caller.account_id, region=caller.region, name=req.vault_name
        )
        resource = _resource(conn, caller, req.resource_arn)
        new = job_rules.new_backup_job(
            job_id=ids.new_uuid(),
            account_id=caller.account_id,
            region=caller.region,
            target=target(resource, vault),
            now=caller.now,
            deadlines=due,
            recovery_point_arn=recovery_point_arn(caller.region, caller.account_id),
            iam_role_arn=req.iam_role_arn,
            idempotency_token=req.idempotency_token,
            lifecycle=None if lc is None else dict(req.lifecycle or {}),
            recovery_point_tags=dict(req.recovery_point_tags or {}),
            backup_options=dict(req.backup_options or {}) or None,
        )
        job = catalog.jobs.create(conn, new)
        if req.idempotency_token:
            first = catalog.idempotency.remember(
                conn,
                account_id=caller.account_id,
                operation=OPERATION,
                token=req.idempotency_token,
                result={"BackupJobId": job.job_id},
                now=caller.now,
            )
            if first["BackupJobId"] != job.job_id:
                raise Conflict(detail="a concurrent request used the same IdempotencyToken")
        return job


def target(
    resource: Record, vault: Record | None, *, vault_name: str = "", vault_arn: str = ""
) -> job_rules.Target:
    """A job's target from the catalog's resource and vault rows (``vault`` None: it does
    not exist, and ``vault_name``/``vault_arn`` say which one was asked for)."""
    return job_rules.Target(
        resource_arn=resource["arn"],
        resource_type=resource["resource_type"],
        resource_name=resource["name"],
        worker_label=resource["worker_label"],
        vault_name=vault_name if vault is None else vault["name"],
        vault_arn=vault_arn if vault is None else vault["arn"],
        vault_type=None if vault is None else vault["vault_type"],
        encryption_key_arn=None if vault is None else vault["encryption_key_arn"],
        is_parent=resource["resource_type"] == composite.RESOURCE_TYPE,
    )


def _resource(conn: Any, caller: Caller, arn: str) -> Record:
    arns.Arn.parse(arn)  # "not an ARN" is InvalidParameterValue, as AWS answers
    row = catalog.resources.find(conn, arn)
    if row is None or (row["account_id"], row["region"]) != (caller.account_id, caller.region):
        raise NotFound(kind="resource", name=f"{arn} (register it first)")
    return row


def get(deps: Deps, caller: Caller, job_id: str) -> BackupJob:
    with catalog.db.transaction(deps.engine) as conn:
        return catalog.jobs.get(conn, job_id, account_id=caller.account_id)


def list_jobs(
    deps: Deps,
    caller: Caller,
    filters: catalog.jobs.BackupJobFilters,
    *,
    account_id: str | None = None,
    limit: int | None = None,
    token: str | None = None,
) -> catalog.pagination.RecordPage[BackupJob]:
    if account_id not in (None, caller.account_id):
        return catalog.pagination.RecordPage([], None)  # no organizations yet: only one's own
    with catalog.db.transaction(deps.engine) as conn:
        return catalog.jobs.list_jobs(
            conn,
            region=caller.region,
            account_ids=[caller.account_id],
            filters=filters,
            limit=limit,
            token=token,
        )


def stop(deps: Deps, caller: Caller, job_id: str) -> None:
    """StopBackupJob: waiting -> ABORTED now; running -> ABORTING, the worker stops."""
    with catalog.db.transaction(deps.engine) as conn:
        job = catalog.jobs.get(conn, job_id, account_id=caller.account_id)
        if job.parent_job_id is not None:  # a group's child stops with its parent
            raise Conflict(detail=f"backup job {job_id} is part of {job.parent_job_id}; stop that")
        catalog.jobs.stop(conn, job_id, now=caller.now)


def summary_windows(period: str, now: datetime) -> list[tuple[datetime, datetime]]:
    """ListBackupJobSummaries' time windows, oldest first, as the model documents them:
    ONE_DAY is the daily count for the prior 14 days (UTC calendar days, today's ending
    now), SEVEN_DAYS and FOURTEEN_DAYS one window over the prior 7 or 14 days."""
    days = PERIODS.get(period)
    if days is None:
        raise InvalidInput(detail=f"AggregationPeriod must be one of {', '.join(PERIODS)}")
    end = now + timedelta(microseconds=1)  # a job created at ``now`` counts
    if days > 1:
        return [(now - timedelta(days=days), end)]
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    starts = [today - timedelta(days=n) for n in range(13, -1, -1)]
    return [(s, s + timedelta(days=1) if s != today else end) for s in starts]


def summary_filters(**given: str | None) -> tuple[set[str], dict[str, str | None]]:
    """A summaries call's filters (dimension -> given value) as (the dimensions summed
    over: AGGREGATE_ALL; the value each dimension must have: None for ANY or absent).

    >>> summary_filters(state="ANY", resource_type="AGGREGATE_ALL", message_category="X")
    ({'resource_type'}, {'state': None, 'resource_type': None, 'message_category': 'X'})
    """
    all_ = catalog.jobs.AGGREGATE_ALL
    aggregate = {d for d, v in given.items() if v == all_}
    return aggregate, {d: (None if v in (None, "ANY", all_) else v) for d, v in given.items()}


def summaries(
    deps: Deps,
    caller: Caller,
    *,
    period: str | None,
    state: str | None,
    resource_type: str | None,
    message_category: str | None,
) -> list[Record]:
    """ListBackupJobSummaries (default period ONE_DAY); a filter of ANY counts per value,
    AGGREGATE_ALL sums over that dimension (reported as AGGREGATE_ALL)."""
    windows_ = summary_windows(period or "ONE_DAY", caller.now)
    aggregate, only = summary_filters(
        state=state, resource_type=resource_type, message_category=message_category
    )
    with catalog.db.transaction(deps.engine) as conn:
        return catalog.jobs.summaries(
            conn,
            region=caller.region,
            account_ids=[caller.account_id],
            windows=windows_,
            aggregate=aggregate,
            **only,
        )


# --- the worker side -----------------------------------------------------------------


def run(deps: Deps, job: BackupJob, worker_id: str, control: JobControl) -> str:
    """Run a claimed job (see :data:`JOB_KIND`): back up, record the point, complete; a
    group's (parent) job runs one child per member (:mod:`.composite`)."""
    if job.is_parent:

        def member(child: BackupJob, ctl: JobControl, fields: Mapping[str, Any]) -> str:
            return _run_one(deps, child, worker_id, ctl, fields)

        return composite.run(deps, job, worker_id, control, member=member, end=_end)
    return _run_one(deps, job, worker_id, control)


def _run_one(
    deps: Deps,
    job: BackupJob,
    worker_id: str,
    control: JobControl,
    point_fields: Mapping[str, Any] | None = None,
) -> str:
    vault, resource = _inputs(deps, job)
    vault_lock.check_job_retention(deps, vault, job.lifecycle)
    result, total = _backup(deps, job, vault, resource, control)
    try:
        state = _record(deps, job, worker_id, vault, resource, result, total, point_fields)
    except NotFound as exc:  # DeleteBackupVault refuses while a job runs: belt and braces
        message = f"the backup vault was deleted while the job ran ({exc})"
        return _end(deps, job, worker_id, "FAILED", status_message=message)
    _protect(deps, job, vault)
    return state


def _protect(deps: Deps, job: BackupJob, vault: Record) -> None:
    """Give the new point's objects their store retention (locked vaults on S3)."""
    with catalog.db.transaction(deps.engine) as conn:
        rp = catalog.recovery_points.find(conn, job.recovery_point_arn)
    if rp is not None:
        try:
            vault_lock.protect_recovery_point(deps, vault, rp, deps.clock.now())
        except SnowvaultError:
            log.exception("backup job %s: store retention not set", job.job_id)


def _inputs(deps: Deps, job: BackupJob) -> tuple[Record, Record]:
    with catalog.db.transaction(deps.engine) as conn:
        vault = catalog.vaults.get_by_arn(conn, job.backup_vault_arn)
        resource = catalog.resources.get(conn, job.resource_arn)
        page = catalog.recovery_points.list_by_vault(
            conn,
            vault_arn=vault["arn"],
            filters=catalog.recovery_points.RecoveryPointFilters(resource_arn=resource["arn"]),
            limit=1,
        )
    parent = page.items[0].engine_recovery_point_id if page.items else None
    return vault, dict(resource, parent=parent)


def _backup(
    deps: Deps, job: BackupJob, vault: Record, resource: Record, control: JobControl
) -> tuple[archiver.BackupResult, int]:
    """Back the resource up with its type's plugin into a new point of ``vault``; the
    result and the source size the plugin reported (BackupSizeInBytes while it runs)."""
    plugin = deps.plugins.get(resource["resource_type"])
    report = plugin_io.BackupReport(control)
    sink = plugin_io.EngineSink(
        deps,
        vault,
        parent=resource["parent"],
        tags=dict(job.recovery_point_tags or {}),
        metadata={
            "resource_arn": resource["arn"],
            "resource_type": resource["resource_type"],
            "recovery_point_arn": job.recovery_point_arn,
            "backup_job_id": job.job_id,
        },
    )
    resource_ = plugin_io.worker_resource(deps, resource)
    plugin.backup(plugins.base.BackupRequest(resource_, deps.path_policy, sink, report))
    return sink.result, report.total


def _record(
    deps: Deps,
    job: BackupJob,
    worker_id: str,
    vault: Record,
    resource: Record,
    result: archiver.BackupResult,
    total: int,
    point_fields: Mapping[str, Any] | None = None,
) -> str:
    now = deps.clock.now()
    summary = result.manifest.summary
    note = result.manifest.metadata.get("plugin") or {}
    outcome = job_rules.backup_outcome(
        partial=result.manifest.partial,
        unreadable=len(result.manifest.errors),
        warning=note.get("warning") if isinstance(note, dict) else None,
    )
    lc = lifecycle.lifecycle_from_api(job.lifecycle)
    calc = lifecycle.calculated_lifecycle(lc, job.creation_date)
    rp_arn = job.recovery_point_arn
    with catalog.db.transaction(deps.engine) as conn:
        # exclusive, not shared: the new point's count updates the vault row, and two
        # backups ending at once that both held it shared deadlocked on PostgreSQL
        catalog.vaults.lock(conn, vault["arn"])  # NotFound if it was deleted
        done = catalog.jobs.QUEUE.complete(
            conn,
            job_id=job.job_id,
            worker_id=worker_id,
            now=now,
            state=outcome.state,
            percent_done=100.0,
            bytes_transferred=summary.bytes_read,
            backup_size_in_bytes=summary.total_size or total,
            status_message=outcome.status_message,
            message_category=outcome.message_category,
        )
        if not done:
            log.warning("backup job %s: lease lost before completion", job.job_id)
            return "LOST"
        catalog.recovery_points.create(
            conn,
            arn=rp_arn,
            account_id=job.account_id,
            region=job.region,
            backup_vault_name=vault["name"],
            backup_vault_arn=vault["arn"],
            vault_type=vault["vault_type"],
            engine_recovery_point_id=result.rp_id,
            resource_arn=resource["arn"],
            resource_type=resource["resource_type"],
            resource_name=resource["name"],
            source_job_id=job.job_id,
            iam_role_arn=job.iam_role_arn,
            status=outcome.point_status,
            status_message=outcome.status_message,
            creation_date=job.creation_date,
            initiation_date=job.initiation_date,
            completion_date=now,
            backup_size_in_bytes=summary.total_size,
            lifecycle=job.lifecycle,
            move_to_cold_at=calc.move_to_cold_storage_at,
            delete_at=calc.delete_at,
            encryption_key_arn=vault["encryption_key_arn"],
            encryption_key_type=vault["encryption_key_type"],
            created_by=job.created_by,
            backup_plan_id=job.backup_plan_id,  # ByBackupPlanId filters on it
            **dict(point_fields or {}),  # a child's parent and member identifier
        )
        catalog.tags.tag(conn, rp_arn, dict(job.recovery_point_tags or {}))
        catalog.resources.record_backup(
            conn, resource["arn"], when=now, vault_arn=vault["arn"], recovery_point_arn=rp_arn
        )
        if outcome.state == job_rules.BackupJobState.COMPLETED:
            copy_jobs.queue_rule_copies(conn, job, now)  # the rule's CopyActions
    return outcome.state


def record_agent_point(
    deps: Deps,
    job: BackupJob,
    worker_id: str,
    vault: Record,
    resource: Record,
    result: archiver.BackupResult,
    total: int,
) -> str:
    """Record a point an agent wrote (services/agents.py) as a worker's is recorded."""
    state = _record(deps, job, worker_id, vault, resource, result, total)
    _protect(deps, job, vault)
    return state


def _end(deps: Deps, job: BackupJob, worker_id: str, state: str, **fields: Any) -> str:
    """End a job that made no recovery point; what it wrote is left for the orphan prune."""
    now = deps.clock.now()
    with catalog.db.transaction(deps.engine) as conn:
        catalog.jobs.QUEUE.complete(
            conn,
            job_id=job.job_id,
            worker_id=worker_id,
            now=now,
            state=state,
            message_category=state,
            **fields,
        )
        vaults.mark_orphans(conn, job.backup_vault_arn, now)
    return state


def _lost(conn: Connection, lost: Sequence[BackupJob], now: datetime) -> None:
    """Jobs whose worker died: what the lost run wrote is left for the orphan prune."""
    for arn in sorted({job.backup_vault_arn for job in lost}):
        vaults.mark_orphans(conn, arn, now)
    composite.lost(conn, lost, now)  # a parent's children end with it


JOB_KIND = jobs.JobKind(
    name=job_rules.Kind.BACKUP, queue=catalog.jobs.QUEUE, run=run, end=_end, on_lost=_lost
)


def expire(deps: Deps, now: datetime) -> list[str]:
    """Waiting jobs past their StartBy become EXPIRED."""
    with catalog.db.transaction(deps.engine) as conn:
        return catalog.jobs.expire_unstarted(conn, now)
