"""The lifecycle expiry sweep: delete recovery points past their DeleteAt, unless
protected.

A due point waits while any active legal hold covers it, and while the vault lock keeps
it (creation + MinRetentionDays for points created under the lock); once free, the next
sweep deletes it exactly like DeleteRecoveryPoint does (manifest forgotten, row dropped,
vault marked for the background prune). Decisions come from
:func:`vault_lock.may_expire` (model.decisions.may_expire).

    deleted, waiting = expiry.expire_due(deps, now)

Must not depend on the scheduler, the composition root or any interface.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from snowvault.control import catalog
from snowvault.control.services import vault_lock, vaults
from snowvault.control.services.base import Deps
from snowvault.engine import errors, prune

log = logging.getLogger("snowvault.sweepers")

Record = dict[str, Any]


def expire_due(deps: Deps, now: datetime) -> tuple[list[str], list[str]]:
    """(deleted ARNs, ARNs that are due but protected) for this sweep."""
    with catalog.db.transaction(deps.engine) as conn:
        due = catalog.recovery_points.list_due_for_deletion(conn, before=now)
    deleted: list[str] = []
    waiting: list[str] = []
    for rp in due:
        decision = vault_lock.may_expire(deps, rp, now)
        if not decision.allowed:
            waiting.append(rp["arn"])
            continue
        _remove(deps, rp, now)
        deleted.append(rp["arn"])
    return deleted, waiting


def _remove(deps: Deps, rp: Record, now: datetime) -> None:
    with catalog.db.transaction(deps.engine) as conn:
        vault = catalog.vaults.get_by_arn(conn, rp["backup_vault_arn"])
        catalog.recovery_points.set_status(conn, rp["arn"], "DELETING")
    with vaults.open_repository(deps, vault) as repo:
        rp_id = rp["engine_recovery_point_id"]
        if rp_id and rp_id in repo.list_manifests():
            try:
                prune.forget(repo, [rp_id])
            except errors.ObjectLocked:
                log.warning("expiry: %s is still retained by the store; kept", rp["arn"])
                with catalog.db.transaction(deps.engine) as conn:
                    catalog.recovery_points.set_status(conn, rp["arn"], rp["status"])
                return
    with catalog.db.transaction(deps.engine) as conn:
        catalog.recovery_points.delete(conn, rp["arn"])
        catalog.settings.put(conn, vaults.prune_key(vault["arn"]), now.isoformat())
