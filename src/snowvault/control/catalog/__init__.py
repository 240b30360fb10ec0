"""Every SQL statement of the control plane: tables, named query functions, migrations.

Services import the package and call modules by name::

    from snowvault.control import catalog

    with catalog.db.transaction(engine) as conn:
        page = catalog.recovery_points.list_by_vault(conn, vault_arn=arn, limit=100)

Must not depend on services, scheduler, plugins, the engine or any interface.
"""

from snowvault.control.catalog import (
    accounts,
    agents,
    cold_storage,
    composite,
    copy_jobs,
    db,
    fleet_locks,
    idempotency,
    jobs,
    kms,
    leadership,
    legal_holds,
    maintenance,
    notifications,
    observability,
    pagination,
    plans,
    queue,
    recovery_points,
    resources,
    restore_jobs,
    schedule_runs,
    sealed_secrets,
    selections,
    settings,
    tables,
    tags,
    vaults,
)

__all__ = [
    "accounts",
    "agents",
    "cold_storage",
    "composite",
    "copy_jobs",
    "db",
    "fleet_locks",
    "idempotency",
    "jobs",
    "kms",
    "leadership",
    "legal_holds",
    "maintenance",
    "notifications",
    "observability",
    "pagination",
    "plans",
    "queue",
    "recovery_points",
    "resources",
    "restore_jobs",
    "schedule_runs",
    "sealed_secrets",
    "selections",
    "settings",
    "tables",
    "tags",
    "vaults",
]
