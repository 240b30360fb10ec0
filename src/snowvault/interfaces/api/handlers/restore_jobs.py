"""Restore job operations: Start/Describe/ListRestoreJobs, ...ByProtectedResource,
GetRestoreJobMetadata.

Must not depend on the CLI or web interfaces.
"""

from __future__ import annotations

from snowvault.app import App
from snowvault.control import catalog
from snowvault.control.services import restore_jobs
from snowvault.interfaces.api.asgi import RequestContext
from snowvault.interfaces.api.handlers import views
from snowvault.interfaces.api.handlers.common import AppHandler, Out, Params, caller, page_out


def start_restore_job(app: App, ctx: RequestContext, params: Params) -> Out:
    job = restore_jobs.start(
        app.deps,
        caller(ctx),
        recovery_point_arn=params["RecoveryPointArn"],
        metadata=params["Metadata"],
        iam_role_arn=params.get("IamRoleArn"),
        idempotency_token=params.get("IdempotencyToken"),
        resource_type=params.get("ResourceType"),
    )
    return {"RestoreJobId": job.restore_job_id}


def describe_restore_job(app: App, ctx: RequestContext, params: Params) -> Out:
    return views.restore_job(restore_jobs.get(app.deps, caller(ctx), params["RestoreJobId"]))


def _filters(params: Params) -> catalog.restore_jobs.RestoreJobFilters:
    return catalog.restore_jobs.RestoreJobFilters(
        resource_type=params.get("ByResourceType"),
        status=params.get("ByStatus"),
        parent_job_id=params.get("ByParentJobId"),
        created_before=params.get("ByCreatedBefore"),
        created_after=params.get("ByCreatedAfter"),
        complete_before=params.get("ByCompleteBefore"),
        complete_after=params.get("ByCompleteAfter"),
        recovery_point_created_before=params.get("ByRecoveryPointCreationDateBefore"),
        recovery_point_created_after=params.get("ByRecoveryPointCreationDateAfter"),
    )


def list_restore_jobs(app: App, ctx: RequestContext, params: Params) -> Out:
    page = restore_jobs.list_jobs(
        app.deps,
        caller(ctx),
        _filters(params),
        account_id=params.get("ByAccountId"),
        limit=params.get("MaxResults"),
        token=params.get("NextToken"),
    )
    return page_out("RestoreJobs", [views.restore_job(r) for r in page.items], page.next_token)


def list_restore_jobs_by_protected_resource(app: App, ctx: RequestContext, params: Params) -> Out:
    page = restore_jobs.list_by_resource(
        app.deps,
        caller(ctx),
        params["ResourceArn"],
        _filters(params),
        limit=params.get("MaxResults"),
        token=params.get("NextToken"),
    )
    return page_out("RestoreJobs", [views.restore_job(r) for r in page.items], page.next_token)


def get_restore_job_metadata(app: App, ctx: RequestContext, params: Params) -> Out:
    job = restore_jobs.get(app.deps, caller(ctx), params["RestoreJobId"])
    return views.restore_job_metadata(job)


HANDLERS: dict[str, AppHandler] = {
    "StartRestoreJob": start_restore_job,
    "DescribeRestoreJob": describe_restore_job,
    "ListRestoreJobs": list_restore_jobs,
    "ListRestoreJobsByProtectedResource": list_restore_jobs_by_protected_resource,
    "GetRestoreJobMetadata": get_restore_job_metadata,
}
