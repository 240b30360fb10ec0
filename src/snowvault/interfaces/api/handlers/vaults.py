"""Backup vault operations: Create/Describe/List/DeleteBackupVault.

Must not depend on the CLI or web interfaces.
"""

from __future__ import annotations

from snowvault.app import App
from snowvault.control.services import vaults
from snowvault.interfaces.api.asgi import RequestContext
from snowvault.interfaces.api.handlers import views
from snowvault.interfaces.api.handlers.common import AppHandler, Out, Params, caller, page_out


def create_backup_vault(app: App, ctx: RequestContext, params: Params) -> Out:
    row = vaults.create(
        app.deps,
        caller(ctx),
        params["BackupVaultName"],
        tags=params.get("BackupVaultTags"),
        encryption_key_arn=params.get("EncryptionKeyArn"),
        creator_request_id=params.get("CreatorRequestId"),
    )
    return {
        "BackupVaultName": row["name"],
        "BackupVaultArn": row["arn"],
        "CreationDate": row["creation_date"],
    }


def describe_backup_vault(app: App, ctx: RequestContext, params: Params) -> Out:
    return views.vault(vaults.get(app.deps, caller(ctx), params["BackupVaultName"]))


def list_backup_vaults(app: App, ctx: RequestContext, params: Params) -> Out:
    page = vaults.list_vaults(
        app.deps,
        caller(ctx),
        vault_type=params.get("ByVaultType"),
        limit=params.get("MaxResults"),
        token=params.get("NextToken"),
    )
    return page_out("BackupVaultList", [views.vault(r) for r in page.items], page.next_token)


def delete_backup_vault(app: App, ctx: RequestContext, params: Params) -> None:
    vaults.delete(app.deps, caller(ctx), params["BackupVaultName"])


HANDLERS: dict[str, AppHandler] = {
    "CreateBackupVault": create_backup_vault,
    "DescribeBackupVault": describe_backup_vault,
    "ListBackupVaults": list_backup_vaults,
    "DeleteBackupVault": delete_backup_vault,
}
