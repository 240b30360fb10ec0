"""Backup job operations: Start/Describe/List/StopBackupJob, ListBackupJobSummaries.

Must not depend on the CLI or web interfaces.
"""

from __future__ import annotations

from snowvault.app import App
from snowvault.control import catalog
from snowvault.control.catalog.db import Record
from snowvault.control.services import backup_jobs, composite, vaults
from snowvault.interfaces.api.asgi import RequestContext
from snowvault.interfaces.api.handlers import views
from snowvault.interfaces.api.handlers.common import AppHandler, Out, Params, caller, page_out


def start_backup_job(app: App, ctx: RequestContext, params: Params) -> Out:
    if params["BackupVaultName"] == vaults.DEFAULT_VAULT:
        vaults.ensure_default(app.deps, caller(ctx))  # AWS's Default: made on first use
    request = backup_jobs.StartRequest(
        vault_name=params["BackupVaultName"],
        resource_arn=params["ResourceArn"],
        iam_role_arn=params["IamRoleArn"],
        idempotency_token=params.get("IdempotencyToken"),
        start_window_minutes=params.get("StartWindowMinutes"),
        complete_window_minutes=params.get("CompleteWindowMinutes"),
        lifecycle=params.get("Lifecycle"),
        recovery_point_tags=params.get("RecoveryPointTags"),
        backup_options=params.get("BackupOptions"),
    )
    return views.started_backup_job(backup_jobs.start(app.deps, caller(ctx), request))


def describe_backup_job(app: App, ctx: RequestContext, params: Params) -> Out:
    who = caller(ctx)
    job = backup_jobs.get(app.deps, who, params["BackupJobId"])
    out = views.backup_job(job)
    if job.is_parent:  # a group's job: its children by state
        counts = composite.child_states(app.deps, who, job)
        out.update(NumberOfChildJobs=sum(counts.values()), ChildJobsInState=counts)
    return out


def list_backup_jobs(app: App, ctx: RequestContext, params: Params) -> Out:
    filters = catalog.jobs.BackupJobFilters(
        resource_arn=params.get("ByResourceArn"),
        state=params.get("ByState"),
        backup_vault_name=params.get("ByBackupVaultName"),
        created_before=params.get("ByCreatedBefore"),
        created_after=params.get("ByCreatedAfter"),
        resource_type=params.get("ByResourceType"),
        complete_after=params.get("ByCompleteAfter"),
        complete_before=params.get("ByCompleteBefore"),
        parent_job_id=params.get("ByParentJobId"),
        message_category=params.get("ByMessageCategory"),
    )
    page = backup_jobs.list_jobs(
        app.deps,
        caller(ctx),
        filters,
        account_id=params.get("ByAccountId"),
        limit=params.get("MaxResults"),
        token=params.get("NextToken"),
    )
    return page_out("BackupJobs", [views.backup_job(r) for r in page.items], page.next_token)


def stop_backup_job(app: App, ctx: RequestContext, params: Params) -> None:
    backup_jobs.stop(app.deps, caller(ctx), params["BackupJobId"])


_SUMMARIES_PAGE = "backup-job-summaries"


def list_backup_job_summaries(app: App, ctx: RequestContext, params: Params) -> Out:
    """AccountId: without organizations every account sees its own jobs (the model: "an
    account not part of Organizations ... jobs within requestor's account will be
    returned"). Pages of MaxResults (default 1000) with an opaque NextToken."""
    period = params.get("AggregationPeriod") or "ONE_DAY"
    rows = backup_jobs.summaries(
        app.deps,
        caller(ctx),
        period=period,
        state=params.get("State"),
        resource_type=params.get("ResourceType"),
        message_category=params.get("MessageCategory"),
    )
    return summaries_out("BackupJobSummaries", _SUMMARIES_PAGE, rows, period, params)


def summaries_out(key: str, kind: str, rows: list[Record], period: str, params: Params) -> Out:
    """One page of job summaries (backup or copy) under ``key``: MaxResults (default
    1000) from the offset in NextToken, a token of list ``kind`` while more follow."""
    token = params.get("NextToken")
    start = 0
    if token is not None:
        values = catalog.pagination.decode_token(kind, token)
        if len(values) != 1 or not isinstance(values[0], int) or values[0] < 0:
            raise catalog.pagination.InvalidToken(detail="not a token of this list")
        start = values[0]
    end = start + (params.get("MaxResults") or catalog.pagination.DEFAULT_LIMIT)
    summaries = [views.backup_job_summary(r) for r in rows[start:end]]
    out: Out = {key: summaries, "AggregationPeriod": period}
    if end < len(rows):
        out["NextToken"] = catalog.pagination.encode_token(kind, [end])
    return out


HANDLERS: dict[str, AppHandler] = {
    "StartBackupJob": start_backup_job,
    "DescribeBackupJob": describe_backup_job,
    "ListBackupJobs": list_backup_jobs,
    "StopBackupJob": stop_backup_job,
    "ListBackupJobSummaries": list_backup_job_summaries,
}
