"""Vault Lock and vault access policy operations: Put/DeleteBackupVaultLockConfiguration,
Put/Get/DeleteBackupVaultAccessPolicy.

Must not depend on the CLI or web interfaces.
"""

from __future__ import annotations

from snowvault.app import App
from snowvault.control.services import iam, vault_lock
from snowvault.interfaces.api.asgi import RequestContext
from snowvault.interfaces.api.handlers.common import AppHandler, Out, Params, caller


def put_lock(app: App, ctx: RequestContext, params: Params) -> None:
    vault_lock.put(
        app.deps,
        caller(ctx),
        params["BackupVaultName"],
        min_days=params.get("MinRetentionDays"),
        max_days=params.get("MaxRetentionDays"),
        changeable_for_days=params.get("ChangeableForDays"),
    )


def delete_lock(app: App, ctx: RequestContext, params: Params) -> None:
    vault_lock.delete(app.deps, caller(ctx), params["BackupVaultName"])


def put_policy(app: App, ctx: RequestContext, params: Params) -> None:
    iam.put_vault_access_policy(
        app.deps, caller(ctx), params["BackupVaultName"], params.get("Policy") or ""
    )


def get_policy(app: App, ctx: RequestContext, params: Params) -> Out:
    return iam.get_vault_access_policy(app.deps, caller(ctx), params["BackupVaultName"])


def delete_policy(app: App, ctx: RequestContext, params: Params) -> None:
    iam.delete_vault_access_policy(app.deps, caller(ctx), params["BackupVaultName"])


HANDLERS: dict[str, AppHandler] = {
    "PutBackupVaultLockConfiguration": put_lock,
    "DeleteBackupVaultLockConfiguration": delete_lock,
    "PutBackupVaultAccessPolicy": put_policy,
    "GetBackupVaultAccessPolicy": get_policy,
    "DeleteBackupVaultAccessPolicy": delete_policy,
}
