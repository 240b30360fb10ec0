"""Backup vault operations: Create/Describe/List/DeleteBackupVault.

A vault that does not exist is answered as AWS answers it: DescribeBackupVault and
ListRecoveryPointsByBackupVault (see :func:`hidden_vault`) return 403
AccessDeniedException "Insufficient privileges to perform this action." rather than a
ResourceNotFoundException, so a caller cannot tell a missing vault from one it may not
see. Clients depend on that quirk (Ansible's ``amazon.aws.backup_vault`` creates a vault
only after that 403). The services keep raising NotFound; only this edge translates, and
only for those two operations (DeleteBackupVault & co. answer ResourceNotFoundException,
as on AWS).

Must not depend on the CLI or web interfaces.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from snowvault.app import App
from snowvault.control.services import vaults
from snowvault.core import errors
from snowvault.interfaces.api import errors as api_errors
from snowvault.interfaces.api.asgi import RequestContext
from snowvault.interfaces.api.handlers import views
from snowvault.interfaces.api.handlers.common import AppHandler, Out, Params, caller, page_out

NO_SUCH_VAULT_MESSAGE = "Insufficient privileges to perform this action."


@contextmanager
def hidden_vault() -> Iterator[None]:
    """Answer a missing vault with AWS's 403 instead of ResourceNotFoundException."""
    try:
        yield
    except errors.NotFound as exc:
        if exc.fields.get("kind") != "backup vault":
            raise
        raise api_errors.ApiError("AccessDeniedException", NO_SUCH_VAULT_MESSAGE, 403) from exc


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
    with hidden_vault():
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
