"""Recovery point operations: list (by vault, by resource), describe, delete,
UpdateRecoveryPointLifecycle, GetRecoveryPointRestoreMetadata,
DisassociateRecoveryPointFromParent.

Must not depend on the CLI or web interfaces.
"""

from __future__ import annotations

from snowvault.app import App
from snowvault.control import catalog
from snowvault.control.services import composite, continuous, recovery_points, vaults
from snowvault.interfaces.api.asgi import RequestContext
from snowvault.interfaces.api.handlers import vaults as handlers_vaults
from snowvault.interfaces.api.handlers import views
from snowvault.interfaces.api.handlers.common import AppHandler, Out, Params, caller, page_out


def list_recovery_points_by_backup_vault(app: App, ctx: RequestContext, params: Params) -> Out:
    filters = catalog.recovery_points.RecoveryPointFilters(
        resource_arn=params.get("ByResourceArn"),
        resource_type=params.get("ByResourceType"),
        backup_plan_id=params.get("ByBackupPlanId"),
        created_before=params.get("ByCreatedBefore"),
        created_after=params.get("ByCreatedAfter"),
        parent_recovery_point_arn=params.get("ByParentRecoveryPointArn"),
    )
    with handlers_vaults.hidden_vault():  # AWS's 403 for a vault that does not exist
        page = recovery_points.list_by_vault(
            app.deps,
            caller(ctx),
            params["BackupVaultName"],
            filters,
            limit=params.get("MaxResults"),
            token=params.get("NextToken"),
        )
    items = [views.recovery_point(r, ctx.now) for r in page.items]
    return page_out("RecoveryPoints", items, page.next_token)


def list_recovery_points_by_resource(app: App, ctx: RequestContext, params: Params) -> Out:
    page = recovery_points.list_by_resource(
        app.deps,
        caller(ctx),
        params["ResourceArn"],
        limit=params.get("MaxResults"),
        token=params.get("NextToken"),
    )
    items = [views.recovery_point_by_resource(r, ctx.now) for r in page.items]
    return page_out("RecoveryPoints", items, page.next_token)


def describe_recovery_point(app: App, ctx: RequestContext, params: Params) -> Out:
    row = recovery_points.get(
        app.deps, caller(ctx), params["BackupVaultName"], params["RecoveryPointArn"]
    )
    window = continuous.window_field(app.deps, row.arn)  # a CONTINUOUS point's extension
    unique = recovery_points.unique_bytes(app.deps, row)  # what delete + prune would free
    return dict(
        views.recovery_point(row, ctx.now),
        SnowvaultRestorableWindow=window,
        SnowvaultUniqueBytes=unique,
    )


def delete_recovery_point(app: App, ctx: RequestContext, params: Params) -> None:
    recovery_points.delete(
        app.deps, caller(ctx), params["BackupVaultName"], params["RecoveryPointArn"]
    )


def disassociate_recovery_point_from_parent(app: App, ctx: RequestContext, params: Params) -> None:
    composite.disassociate(
        app.deps, caller(ctx), params["BackupVaultName"], params["RecoveryPointArn"]
    )


def update_recovery_point_lifecycle(app: App, ctx: RequestContext, params: Params) -> Out:
    row = recovery_points.update_lifecycle(
        app.deps,
        caller(ctx),
        params["BackupVaultName"],
        params["RecoveryPointArn"],
        params.get("Lifecycle"),
    )
    view = views.recovery_point(row, ctx.now)
    keys = ("BackupVaultArn", "RecoveryPointArn", "Lifecycle", "CalculatedLifecycle")
    return {k: view[k] for k in keys if k in view}


def get_recovery_point_restore_metadata(app: App, ctx: RequestContext, params: Params) -> Out:
    who = caller(ctx)
    vault = vaults.get(app.deps, who, params["BackupVaultName"])
    arn = params["RecoveryPointArn"]
    metadata = recovery_points.restore_metadata(app.deps, who, vault["name"], arn)
    return {
        "BackupVaultArn": vault["arn"],
        "RecoveryPointArn": arn,
        "RestoreMetadata": metadata,
        "ResourceType": recovery_points.get(app.deps, who, vault["name"], arn).resource_type,
    }


HANDLERS: dict[str, AppHandler] = {
    "ListRecoveryPointsByBackupVault": list_recovery_points_by_backup_vault,
    "ListRecoveryPointsByResource": list_recovery_points_by_resource,
    "DescribeRecoveryPoint": describe_recovery_point,
    "DeleteRecoveryPoint": delete_recovery_point,
    "DisassociateRecoveryPointFromParent": disassociate_recovery_point_from_parent,
    "UpdateRecoveryPointLifecycle": update_recovery_point_lifecycle,
    "GetRecoveryPointRestoreMetadata": get_recovery_point_restore_metadata,
}
