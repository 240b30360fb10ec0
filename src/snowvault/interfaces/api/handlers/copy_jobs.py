"""Copy job operations: StartCopyJob, DescribeCopyJob, ListCopyJobs, ListCopyJobSummaries.

Must not depend on the CLI or web interfaces.
"""

from __future__ import annotations

from snowvault.app import App
from snowvault.control import catalog
from snowvault.control.services import copy_jobs
from snowvault.interfaces.api.asgi import RequestContext
from snowvault.interfaces.api.handlers import backup_jobs, views
from snowvault.interfaces.api.handlers.common import AppHandler, Out, Params, caller, page_out


def start_copy_job(app: App, ctx: RequestContext, params: Params) -> Out:
    request = copy_jobs.StartRequest(
        recovery_point_arn=params["RecoveryPointArn"],
        source_vault_name=params["SourceBackupVaultName"],
        destination_vault_arn=params["DestinationBackupVaultArn"],
        iam_role_arn=params.get("IamRoleArn"),
        idempotency_token=params.get("IdempotencyToken"),
        lifecycle=params.get("Lifecycle"),
    )
    job = copy_jobs.start(app.deps, caller(ctx), request)
    return {"CopyJobId": job.copy_job_id, "CreationDate": job.creation_date, "IsParent": False}


def describe_copy_job(app: App, ctx: RequestContext, params: Params) -> Out:
    return {"CopyJob": views.copy_job(copy_jobs.get(app.deps, caller(ctx), params["CopyJobId"]))}


def list_copy_jobs(app: App, ctx: RequestContext, params: Params) -> Out:
    filters = catalog.copy_jobs.CopyJobFilters(
        resource_arn=params.get("ByResourceArn"),
        state=params.get("ByState"),
        created_before=params.get("ByCreatedBefore"),
        created_after=params.get("ByCreatedAfter"),
        resource_type=params.get("ByResourceType"),
        destination_vault_arn=params.get("ByDestinationVaultArn"),
        complete_before=params.get("ByCompleteBefore"),
        complete_after=params.get("ByCompleteAfter"),
        parent_job_id=params.get("ByParentJobId"),
        message_category=params.get("ByMessageCategory"),
        source_recovery_point_arn=params.get("BySourceRecoveryPointArn"),
    )
    page = copy_jobs.list_jobs(
        app.deps,
        caller(ctx),
        filters,
        account_id=params.get("ByAccountId"),
        limit=params.get("MaxResults"),
        token=params.get("NextToken"),
    )
    return page_out("CopyJobs", [views.copy_job(j) for j in page.items], page.next_token)


_SUMMARIES_PAGE = "copy-job-summaries"


def list_copy_job_summaries(app: App, ctx: RequestContext, params: Params) -> Out:
    """As ListBackupJobSummaries: one's own account, pages of MaxResults."""
    period = params.get("AggregationPeriod") or "ONE_DAY"
    rows = copy_jobs.summaries(
        app.deps,
        caller(ctx),
        period=period,
        state=params.get("State"),
        resource_type=params.get("ResourceType"),
        message_category=params.get("MessageCategory"),
    )
    return backup_jobs.summaries_out("CopyJobSummaries", _SUMMARIES_PAGE, rows, period, params)


HANDLERS: dict[str, AppHandler] = {
    "StartCopyJob": start_copy_job,
    "DescribeCopyJob": describe_copy_job,
    "ListCopyJobs": list_copy_jobs,
    "ListCopyJobSummaries": list_copy_job_summaries,
}
