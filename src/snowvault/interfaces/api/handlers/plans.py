"""Backup plan and selection operations: plans (CRUD, versions, templates, JSON) and
selections (CRUD). Thin: parse, call the service, shape the output.

Must not depend on the CLI or web interfaces.
"""

from __future__ import annotations

from typing import Any

from snowvault.app import App
from snowvault.control.services import paging, plans, selections
from snowvault.interfaces.api.asgi import RequestContext
from snowvault.interfaces.api.handlers.common import (
    AppHandler,
    Out,
    Params,
    caller,
    drop_none,
    page_out,
)

Row = dict[str, Any]


def _plan_member(row: Row) -> Out:
    return drop_none(
        {
            "BackupPlanArn": row["arn"],
            "BackupPlanId": row["backup_plan_id"],
            "CreationDate": row["creation_date"],
            "DeletionDate": row["deletion_date"],
            "VersionId": row["version_id"],
            "BackupPlanName": row["name"],
            "CreatorRequestId": row["creator_request_id"],
            "LastExecutionDate": row["last_execution_date"],
            "AdvancedBackupSettings": row["advanced_backup_settings"],
        }
    )


def _selection_member(row: Row) -> Out:
    return drop_none(
        {
            "SelectionId": row["selection_id"],
            "SelectionName": row["name"],
            "BackupPlanId": row["backup_plan_id"],
            "CreationDate": row["creation_date"],
            "CreatorRequestId": row["creator_request_id"],
            "IamRoleArn": row["iam_role_arn"],
        }
    )


def create_backup_plan(app: App, ctx: RequestContext, params: Params) -> Out:
    row = plans.create(
        app.deps,
        caller(ctx),
        params["BackupPlan"],
        tags=params.get("BackupPlanTags"),
        creator_request_id=params.get("CreatorRequestId"),
    )
    return {k: v for k, v in _plan_member(row).items() if k in _CREATED}


_CREATED = ("BackupPlanId", "BackupPlanArn", "CreationDate", "VersionId", "AdvancedBackupSettings")


def get_backup_plan(app: App, ctx: RequestContext, params: Params) -> Out:
    row = plans.get(
        app.deps,
        caller(ctx),
        params["BackupPlanId"],
        version_id=params.get("VersionId"),
        max_runs_preview=params.get("MaxScheduledRunsPreview"),
    )
    out = _plan_member(row)
    out.pop("BackupPlanName", None)
    out["CreationDate"] = row["version_creation_date"]  # AWS: the asked version's date
    document = row["document"]
    rules = [{"EnableContinuousBackup": False, **rule} for rule in document["Rules"]]
    out["BackupPlan"] = dict(document, Rules=rules)  # AWS sends the false flag too
    if row["runs_preview"]:
        out["ScheduledRunsPreview"] = row["runs_preview"]
    return out


def update_backup_plan(app: App, ctx: RequestContext, params: Params) -> Out:
    row = plans.update(app.deps, caller(ctx), params["BackupPlanId"], params["BackupPlan"])
    return {k: v for k, v in _plan_member(row).items() if k in _CREATED}


def delete_backup_plan(app: App, ctx: RequestContext, params: Params) -> Out:
    row = plans.delete(app.deps, caller(ctx), params["BackupPlanId"])
    keys = ("BackupPlanId", "BackupPlanArn", "DeletionDate", "VersionId")
    return {k: v for k, v in _plan_member(row).items() if k in keys}


def list_backup_plans(app: App, ctx: RequestContext, params: Params) -> Out:
    page = plans.list_plans(
        app.deps,
        caller(ctx),
        include_deleted=bool(params.get("IncludeDeleted")),
        limit=params.get("MaxResults"),
        token=params.get("NextToken"),
    )
    return page_out("BackupPlansList", [_plan_member(r) for r in page.items], page.next_token)


def list_backup_plan_versions(app: App, ctx: RequestContext, params: Params) -> Out:
    page = plans.list_versions(
        app.deps,
        caller(ctx),
        params["BackupPlanId"],
        limit=params.get("MaxResults"),
        token=params.get("NextToken"),
    )
    items = [_plan_member(dict(r, last_execution_date=None)) for r in page.items]
    return page_out("BackupPlanVersionsList", items, page.next_token)


def export_backup_plan_template(app: App, ctx: RequestContext, params: Params) -> Out:
    text = plans.export_template(app.deps, caller(ctx), params["BackupPlanId"])
    return {"BackupPlanTemplateJson": text}


def get_backup_plan_from_json(app: App, ctx: RequestContext, params: Params) -> Out:
    return {"BackupPlan": plans.plan_from_json(params["BackupPlanTemplateJson"])}


def list_backup_plan_templates(app: App, ctx: RequestContext, params: Params) -> Out:
    items, next_token = paging.page(
        "plan-templates",
        plans.list_templates(),
        key=lambda t: str(t["BackupPlanTemplateId"]),
        limit=params.get("MaxResults"),
        token=params.get("NextToken"),
    )
    return page_out("BackupPlanTemplatesList", items, next_token)


def get_backup_plan_from_template(app: App, ctx: RequestContext, params: Params) -> Out:
    return {"BackupPlanDocument": plans.template(params["BackupPlanTemplateId"])}


def create_backup_selection(app: App, ctx: RequestContext, params: Params) -> Out:
    row = selections.create(
        app.deps,
        caller(ctx),
        params["BackupPlanId"],
        params["BackupSelection"],
        creator_request_id=params.get("CreatorRequestId"),
    )
    keys = ("SelectionId", "BackupPlanId", "CreationDate")
    return {k: v for k, v in _selection_member(row).items() if k in keys}


def get_backup_selection(app: App, ctx: RequestContext, params: Params) -> Out:
    row = selections.get(app.deps, caller(ctx), params["BackupPlanId"], params["SelectionId"])
    out = _selection_member(row)
    for key in ("SelectionName", "IamRoleArn"):
        out.pop(key, None)
    return dict(out, BackupSelection=_selection_document(row["document"]))


CONDITION_OPERATORS = ("StringEquals", "StringNotEquals", "StringLike", "StringNotLike")


def _selection_document(doc: Row) -> Out:
    """The stored BackupSelection as AWS returns it: the three lists and the four
    Conditions lists always present, empty when not given (clients compare against it)."""
    out = dict(doc)
    for key in ("Resources", "ListOfTags", "NotResources"):
        out[key] = list(out.get(key) or [])
    conditions = out.get("Conditions") or {}
    out["Conditions"] = {op: list(conditions.get(op) or []) for op in CONDITION_OPERATORS}
    return out


def delete_backup_selection(app: App, ctx: RequestContext, params: Params) -> None:
    selections.delete(app.deps, caller(ctx), params["BackupPlanId"], params["SelectionId"])


def list_backup_selections(app: App, ctx: RequestContext, params: Params) -> Out:
    page = selections.list_selections(
        app.deps,
        caller(ctx),
        params["BackupPlanId"],
        limit=params.get("MaxResults"),
        token=params.get("NextToken"),
    )
    items = [_selection_member(r) for r in page.items]
    return page_out("BackupSelectionsList", items, page.next_token)


def preview_selection(app: App, ctx: RequestContext, params: Params) -> Out:
    """Extension action PreviewSelection {BackupSelection} or {BackupPlanId, SelectionId}
    -> {Resources: [{ResourceArn, ResourceType, ResourceName, Tags, Selected, Explanation}]}."""
    doc = params.get("BackupSelection")
    if doc is None:
        found = selections.get(
            app.deps, caller(ctx), str(params.get("BackupPlanId")), str(params.get("SelectionId"))
        )
        doc = found["document"]
    return {"Resources": selections.preview(app.deps, caller(ctx), doc)}


HANDLERS: dict[str, AppHandler] = {
    "CreateBackupPlan": create_backup_plan,
    "GetBackupPlan": get_backup_plan,
    "UpdateBackupPlan": update_backup_plan,
    "DeleteBackupPlan": delete_backup_plan,
    "ListBackupPlans": list_backup_plans,
    "ListBackupPlanVersions": list_backup_plan_versions,
    "ExportBackupPlanTemplate": export_backup_plan_template,
    "GetBackupPlanFromJSON": get_backup_plan_from_json,
    "ListBackupPlanTemplates": list_backup_plan_templates,
    "GetBackupPlanFromTemplate": get_backup_plan_from_template,
    "CreateBackupSelection": create_backup_selection,
    "GetBackupSelection": get_backup_selection,
    "DeleteBackupSelection": delete_backup_selection,
    "ListBackupSelections": list_backup_selections,
}
