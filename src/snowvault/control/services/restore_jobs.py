"""Restore jobs: StartRestoreJob and friends, and running one restore on a worker.

What Metadata a restore understands, and what it writes, is the point's resource type's
plugin's (``Deps.plugins``; Directory: ``targetPath``, ``items``, ``overwrite``, see
:mod:`snowvault.plugins.directory`): it refuses bad Metadata at the call, before any job
exists, and checks it again in the worker right before it writes, reading from a source
over the vault's repository (:mod:`snowvault.control.services.plugin_io`). A job ends
COMPLETED, or FAILED with a StatusMessage naming what went wrong (the plugin's
after-restore check included).

Abuse case: a caller with ``StartRestoreJob`` names a place the server will write with
its own (often root) rights; for host paths the plugin applies the operator's host-path
rule (``Deps.path_policy``) at the call and again in the worker.

Must not depend on the scheduler, the composition root or any interface.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from snowvault import plugins
from snowvault.control import catalog
from snowvault.control.model import agent_hosts
from snowvault.control.model import jobs as job_rules
from snowvault.control.model.jobs import RestoreJob
from snowvault.control.services import agent_resources, composite, continuous, jobs, plugin_io
from snowvault.control.services.base import Caller, Deps, JobControl
from snowvault.core import arn as arns
from snowvault.core import ids
from snowvault.core.errors import Conflict, NotFound
from snowvault.engine import restorer

log = logging.getLogger("snowvault.jobs")

OPERATION = "StartRestoreJob"


def start(
    deps: Deps,
    caller: Caller,
    *,
    recovery_point_arn: str,
    metadata: Mapping[str, str],
    iam_role_arn: str | None = None,
    idempotency_token: str | None = None,
    resource_type: str | None = None,
) -> RestoreJob:
    """StartRestoreJob: validate the target now (fail fast, no job), then queue the job.
    A point of a resource on an agent host becomes a job only that host's agent claims."""
    label = _check_metadata(deps, caller, recovery_point_arn, metadata)
    with catalog.db.transaction(deps.engine) as conn:
        if idempotency_token:
            seen = catalog.idempotency.lookup(
                conn, account_id=caller.account_id, operation=OPERATION, token=idempotency_token
            )
            if seen is not None:
                return catalog.restore_jobs.get(conn, seen["RestoreJobId"])
        rp = catalog.recovery_points.find(conn, recovery_point_arn)
        if rp is None or rp.account_id != caller.account_id:
            raise NotFound(kind="recovery point", name=recovery_point_arn)
        stopped_continuous = rp.status == "STOPPED" and continuous.find(deps, rp.arn)
        if rp.status not in ("COMPLETED", "PARTIAL") and not stopped_continuous:
            raise Conflict(detail=f"recovery point {recovery_point_arn} is {rp.status}")
        job = catalog.restore_jobs.create(
            conn,
            restore_job_id=ids.new_uuid(),
            account_id=caller.account_id,
            region=caller.region,
            recovery_point_arn=rp.arn,
            backup_vault_arn=rp.backup_vault_arn,
            source_resource_arn=rp.resource_arn,
            resource_type=resource_type or rp.resource_type,
            metadata=dict(metadata),
            iam_role_arn=iam_role_arn,
            idempotency_token=idempotency_token,
            creation_date=caller.now,
            recovery_point_creation_date=rp.creation_date,
            backup_size_in_bytes=rp.backup_size_in_bytes,
            percent_done=0.0,
            is_parent=rp.is_parent,  # a composite point: child jobs per member
            worker_label=label,
        )
        if idempotency_token:
            catalog.idempotency.remember(
                conn,
                account_id=caller.account_id,
                operation=OPERATION,
                token=idempotency_token,
                result={"RestoreJobId": job.restore_job_id},
                now=caller.now,
            )
        return job


def _check_metadata(
    deps: Deps, caller: Caller, recovery_point_arn: str, metadata: Mapping[str, str]
) -> str | None:
    """The point's plugin refuses Metadata it cannot honour, before any job exists (a
    point the caller does not have is left to the lookup that answers NotFound). The
    job's worker label: the agent's of the point's resource's host, else None.

    Abuse case: a copy of an agent's point in another account still names the first
    account's resource; its restores are the copy's owner's, never that agent's (which
    would receive the job and write where the other account says on its host), so only
    an agent of the caller's own account gets a label; any other runs on the server."""
    with catalog.db.transaction(deps.engine) as conn:
        rp = catalog.recovery_points.find(conn, recovery_point_arn)
        resource = catalog.resources.find(conn, rp.resource_arn) if rp is not None else None
    label = resource["worker_label"] if resource is not None else None
    if rp is not None and rp.account_id == caller.account_id:
        agent_label = agent_hosts.restore_label(
            label, point_account=rp.account_id, caller_account=caller.account_id
        )
        if agent_label is not None:
            # the server cannot see that host: only the form here; the agent judges
            # paths and hosts by its own --allow-path/--allow-network right before it writes
            agent_resources.check_restore_form(deps.plugins, rp.resource_type, metadata)
            return agent_label
        if continuous.find(deps, rp.arn) is not None:  # pointInTime inside the window
            continuous.check_restore(deps, rp.arn, metadata)
            return None
        deps.plugins.get(rp.resource_type).check_restore(metadata, deps.path_policy)
        if rp.is_parent:  # a composite point: each chosen member's own plugin judges
            composite.restore_plan(deps, rp, metadata)
    return None


def get(deps: Deps, caller: Caller, job_id: str) -> RestoreJob:
    with catalog.db.transaction(deps.engine) as conn:
        return catalog.restore_jobs.get(conn, job_id, account_id=caller.account_id)


def list_jobs(
    deps: Deps,
    caller: Caller,
    filters: catalog.restore_jobs.RestoreJobFilters,
    *,
    account_id: str | None = None,
    limit: int | None = None,
    token: str | None = None,
) -> catalog.pagination.RecordPage[RestoreJob]:
    if account_id not in (None, caller.account_id):
        return catalog.pagination.RecordPage([], None)
    with catalog.db.transaction(deps.engine) as conn:
        return catalog.restore_jobs.list_jobs(
            conn,
            region=caller.region,
            account_ids=[caller.account_id],
            filters=filters,
            limit=limit,
            token=token,
        )


def list_by_resource(
    deps: Deps,
    caller: Caller,
    resource_arn: str,
    filters: catalog.restore_jobs.RestoreJobFilters,
    *,
    limit: int | None = None,
    token: str | None = None,
) -> catalog.pagination.RecordPage[RestoreJob]:
    with catalog.db.transaction(deps.engine) as conn:
        return catalog.restore_jobs.list_by_protected_resource(
            conn,
            account_id=caller.account_id,
            resource_arn=resource_arn,
            filters=filters,
            limit=limit,
            token=token,
        )


# --- the worker side -----------------------------------------------------------------


def run(deps: Deps, job: RestoreJob, worker_id: str, control: JobControl) -> str:
    """Run a claimed restore job (see :data:`JOB_KIND`); returns the final status. A
    composite point's (parent) job runs one child restore job per member it names."""
    if job.is_parent:

        def member(child: RestoreJob, ctl: JobControl) -> str:
            return run(deps, child, worker_id, ctl)

        return composite.run_restore(deps, job, worker_id, control, member=member, end=_end)
    result = _restore(deps, job, control)
    if result.errors:
        first = result.errors[0]
        message = f"{len(result.errors)} entries failed, first {first.path}: {first.error}"
        return _end(
            deps, job, worker_id, "FAILED", status_message=message, bytes_transferred=result.bytes
        )
    return finish(deps, job, worker_id, result)


def created_resource_arn(deps: Deps, job: RestoreJob) -> str | None:
    """CreatedResourceArn: the restored resource in snowvault's ARN form. A plugin that
    can name what it restored (``restored_source(metadata)``, e.g. Directory's target
    path) gives the source; a registered resource of that type and source in the job's
    account and region is named by its ARN, any other by the plugin's ARN kind followed
    by the source (``arn:aws:snowvault:REGION:ACCOUNT:directory/srv/restored``)."""
    plugin = deps.plugins.get(job.resource_type or "")
    name_of = getattr(plugin, "restored_source", None)
    source = name_of(dict(job.metadata or {})) if callable(name_of) else None
    if not isinstance(source, str) or not source:
        return None
    token = None
    with catalog.db.transaction(deps.engine) as conn:
        while True:
            page = catalog.resources.list_resources(
                conn,
                account_id=job.account_id,
                region=job.region,
                resource_type=plugin.type_name,
                token=token,
            )
            for row in page.items:
                if row["source"] == source:
                    return str(row["arn"])
            token = page.next_token
            if token is None:
                break
    return arns.build(
        "snowvault", job.region, job.account_id, f"{plugin.arn_kind}/{source.lstrip('/')}"
    )


def _restore(deps: Deps, job: RestoreJob, control: JobControl) -> restorer.RestoreResult:
    """Restore with the point's plugin from a source over its vault, then the plugin's
    after-restore check (RestoreNotValid fails the job)."""
    with catalog.db.transaction(deps.engine) as conn:
        rp = catalog.recovery_points.get(conn, job.recovery_point_arn)
        vault = catalog.vaults.get_by_arn(conn, rp.backup_vault_arn)
    metadata = dict(job.metadata or {})
    if continuous.find(deps, rp.arn) is not None:  # base backup + WAL to pointInTime
        return continuous.restore(deps, rp, vault, metadata, plugin_io.restore_report(control))
    return _restore_point(deps, rp, vault, metadata, control, job.restore_job_id)


def _restore_point(
    deps: Deps,
    rp: job_rules.RecoveryPoint,
    vault: catalog.db.Record,
    metadata: dict[str, str],
    control: JobControl,
    job_id: str,
) -> restorer.RestoreResult:
    with catalog.db.transaction(deps.engine) as conn:
        resource = catalog.resources.find(conn, rp.resource_arn)
    if resource is not None and resource["account_id"] != rp.account_id:
        # a copy in another account: the source resource, its settings and its secrets (a
        # database password, an S3 key) are the other account's; restore as if it were
        # no longer registered, with what the restoring account gives in Metadata
        resource = None
    plugin = deps.plugins.get(rp.resource_type)
    source = plugin_io.EngineSource(deps, vault, rp.engine_recovery_point_id or "")
    request = plugins.base.RestoreRequest(
        plugin_io.worker_point_resource(deps, rp, resource),
        metadata,
        deps.path_policy,
        source,
        plugin_io.restore_report(control),
        job_id=job_id,  # a killed attempt's partial restore is this job's to finish
    )
    plugin.restore(request)
    problem = None if source.result.errors else plugin.validate_restore(request)
    if problem is not None:
        raise plugins.errors.RestoreNotValid(resource_type=plugin.type_name, detail=problem)
    return source.result


def finish(deps: Deps, job: RestoreJob, worker_id: str, result: restorer.RestoreResult) -> str:
    """End a restore job COMPLETED (the worker's or an agent's) and record the restore."""
    now = deps.clock.now()
    minutes = int((now - (job.start_date or now)).total_seconds() // 60)
    created_arn = created_resource_arn(deps, job)
    with catalog.db.transaction(deps.engine) as conn:
        done = catalog.restore_jobs.QUEUE.complete(
            conn,
            job_id=job.restore_job_id,
            worker_id=worker_id,
            now=now,
            state=job_rules.RestoreJobStatus.COMPLETED,
            percent_done=100.0,
            bytes_transferred=result.bytes,
            status_message=f"restored {result.files} files, {result.bytes} bytes",
            created_resource_arn=created_arn,
        )
        if not done:
            return "LOST"
        catalog.recovery_points.record_restore(conn, job.recovery_point_arn, now)
        if job.source_resource_arn and catalog.resources.find(conn, job.source_resource_arn):
            catalog.resources.record_restore(
                conn,
                job.source_resource_arn,
                job_creation_date=job.creation_date,
                execution_time_minutes=minutes,
                recovery_point_creation_date=job.recovery_point_creation_date,
            )
    return "COMPLETED"


def _end(deps: Deps, job: RestoreJob, worker_id: str, status: str, **fields: Any) -> str:
    with catalog.db.transaction(deps.engine) as conn:
        catalog.restore_jobs.QUEUE.complete(
            conn,
            job_id=job.restore_job_id,
            worker_id=worker_id,
            now=deps.clock.now(),
            state=status,
            **fields,
        )
    return status


JOB_KIND = jobs.JobKind(
    name=job_rules.Kind.RESTORE,
    queue=catalog.restore_jobs.QUEUE,
    run=run,
    end=_end,
    on_lost=composite.lost_restores,  # a parent's children end with it
)
