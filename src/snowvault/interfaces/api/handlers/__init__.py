"""The AWS Backup handler table: one module per resource family, merged here.

    table = bind(app)              # {"CreateBackupVault": callable(ctx, params), ...}
    implemented()                  # {"backup": {...}}: for docs/api-coverage.md

Must not depend on the CLI or web interfaces.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial

from snowvault.app import App
from snowvault.interfaces.api.asgi import Handler
from snowvault.interfaces.api.handlers import (
    backup_jobs,
    protected_resources,
    recovery_points,
    restore_jobs,
    settings,
    tags,
    vaults,
)
from snowvault.interfaces.api.handlers.common import AppHandler

MODEL_NAME = "backup"


def _merge() -> dict[str, AppHandler]:
    table: dict[str, AppHandler] = {}
    for module in (
        vaults,
        backup_jobs,
        restore_jobs,
        recovery_points,
        protected_resources,
        tags,
        settings,
    ):
        for name, handler in module.HANDLERS.items():
            if name in table:
                raise ValueError(f"operation {name} has two handlers")
            table[name] = handler
    return table


ALL: Mapping[str, AppHandler] = _merge()


def bind(app: App) -> dict[str, Handler]:
    """The handler table for ``app``: each handler with the app bound."""
    return {name: partial(handler, app) for name, handler in ALL.items()}


def implemented() -> dict[str, set[str]]:
    """Model name -> implemented operations (the coverage generator's input)."""
    return {MODEL_NAME: set(ALL)}
