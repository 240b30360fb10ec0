"""Vault notifications: Put/Get/DeleteBackupVaultNotifications.

Must not depend on the CLI or web interfaces.
"""

from __future__ import annotations

from snowvault.app import App
from snowvault.control.services import notifications
from snowvault.interfaces.api.asgi import RequestContext
from snowvault.interfaces.api.handlers.common import AppHandler, Out, Params, caller


def put(app: App, ctx: RequestContext, params: Params) -> None:
    notifications.put(
        app.deps,
        caller(ctx),
        params["BackupVaultName"],
        params["SNSTopicArn"],
        params["BackupVaultEvents"],
    )


def get(app: App, ctx: RequestContext, params: Params) -> Out:
    return notifications.get(app.deps, caller(ctx), params["BackupVaultName"])


def delete(app: App, ctx: RequestContext, params: Params) -> None:
    notifications.delete(app.deps, caller(ctx), params["BackupVaultName"])


HANDLERS: dict[str, AppHandler] = {
    "PutBackupVaultNotifications": put,
    "GetBackupVaultNotifications": get,
    "DeleteBackupVaultNotifications": delete,
}
