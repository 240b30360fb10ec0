"""The AWS Backup handler table: one module per resource family, merged here.

    table = bind(app)              # {"CreateBackupVault": callable(ctx, params), ...}
    implemented()                  # {"backup": {...}}: for docs/api-coverage.md

Must not depend on the CLI or web interfaces.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import partial
from typing import Any

from snowvault.app import App
from snowvault.control.services import authorization
from snowvault.interfaces.api.asgi import Handler, RequestContext
from snowvault.interfaces.api.handlers import (
    backup_jobs,
    copy_jobs,
    kms,
    legal_holds,
    notifications,
    plans,
    protected_resources,
    recovery_points,
    restore_jobs,
    settings,
    tags,
    vault_lock,
    vaults,
)
from snowvault.interfaces.api.handlers.common import AppHandler, Params, caller

MODEL_NAME = "backup"


def _merge() -> dict[str, AppHandler]:
    table: dict[str, AppHandler] = {}
    for module in (
        vaults,
        backup_jobs,
        restore_jobs,
        copy_jobs,
        recovery_points,
        protected_resources,
        tags,
        settings,
        vault_lock,
        legal_holds,
        plans,
        notifications,
    ):
        for name, handler in module.HANDLERS.items():
            if name in table:
                raise ValueError(f"operation {name} has two handlers")
            table[name] = handler
    return table


ALL: Mapping[str, AppHandler] = _merge()


def _authorized(
    app: App, name: str, handler: AppHandler, ctx: RequestContext, params: Params
) -> Mapping[str, Any] | None:
    """``backup:<Operation>`` on the operation's resource, before the handler runs."""
    authorization.authorize_operation(app.deps, caller(ctx), name, params)
    return handler(app, ctx, params)


def unruled(names: Iterable[str]) -> list[str]:
    """The operations among ``names`` that authorization has no rule for."""
    return sorted(set(names) - set(authorization.OPERATIONS))


def bind(app: App) -> dict[str, Handler]:
    """The handler table for ``app``: each handler with the app bound, authorized first.
    Refuses to build when an operation has no authorization rule (it would be refused
    at every call anyway)."""
    missing = unruled(ALL)
    if missing:
        raise ValueError(f"operations without an authorization rule: {', '.join(missing)}")
    return {name: partial(_authorized, app, name, handler) for name, handler in ALL.items()}


def implemented() -> dict[str, set[str]]:
    """Model name -> implemented operations (the coverage generator's input)."""
    return {MODEL_NAME: set(ALL), kms.MODEL_NAME: set(kms.HANDLERS)}
