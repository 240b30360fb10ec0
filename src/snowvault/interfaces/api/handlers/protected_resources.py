"""Protected resource operations: ListProtectedResources, DescribeProtectedResource,
ListProtectedResourcesByBackupVault.

Must not depend on the CLI or web interfaces.
"""

from __future__ import annotations

from snowvault.app import App
from snowvault.control.services import resources, vaults
from snowvault.interfaces.api.asgi import RequestContext
from snowvault.interfaces.api.handlers import views
from snowvault.interfaces.api.handlers.common import AppHandler, Out, Params, caller, page_out


def list_protected_resources(app: App, ctx: RequestContext, params: Params) -> Out:
    page = resources.list_resources(
        app.deps,
        caller(ctx),
        protected_only=True,
        limit=params.get("MaxResults"),
        token=params.get("NextToken"),
    )
    return page_out("Results", [views.protected_resource(r) for r in page.items], page.next_token)


def describe_protected_resource(app: App, ctx: RequestContext, params: Params) -> Out:
    return views.protected_resource(resources.get(app.deps, caller(ctx), params["ResourceArn"]))


def list_protected_resources_by_backup_vault(app: App, ctx: RequestContext, params: Params) -> Out:
    who = caller(ctx)
    vault = vaults.get(app.deps, who, params["BackupVaultName"])
    page = resources.list_by_vault(
        app.deps, who, vault, limit=params.get("MaxResults"), token=params.get("NextToken")
    )
    return page_out("Results", [views.protected_resource(r) for r in page.items], page.next_token)


HANDLERS: dict[str, AppHandler] = {
    "ListProtectedResources": list_protected_resources,
    "DescribeProtectedResource": describe_protected_resource,
    "ListProtectedResourcesByBackupVault": list_protected_resources_by_backup_vault,
}
