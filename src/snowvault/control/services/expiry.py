"""Expiry of recovery points past their DeleteAt — the ONE code path, run by the
``expire-points`` sweep (``scheduler/sweepers.py``); nothing else expires a point.

A due point waits while any active legal hold covers it, and while the vault lock keeps
it (creation + MinRetentionDays for points created under the lock); decisions come from
:func:`vault_lock.may_expire` (model.decisions.may_expire). Once free, :func:`expire_point`
deletes it with DeleteRecoveryPoint's own :func:`recovery_points.forget_point` (manifest
forgotten, row dropped, vault marked for prune), under a ``lifecycle_runs`` EXPIRE
record that makes each point's expiry happen once whatever number of sweepers run; a
failure (the store still retains the object, storage unreachable) restores the point
and drops the record, so a later sweep retries.

    deleted, waiting = expiry.expire_due(deps, now)
    expiry.expire_point(deps, rp, now)    # True done, False failed (retried), None: taken

Must not depend on the scheduler, the composition root or any interface.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.engine import Connection

from snowvault.control import catalog
from snowvault.control.model import jobs
from snowvault.control.services import recovery_points, vault_lock
from snowvault.control.services.base import Deps
from snowvault.core.errors import SnowvaultError
from snowvault.engine import errors

log = logging.getLogger("snowvault.sweepers")

EXPIRE = "EXPIRE"


def expire_due(deps: Deps, now: datetime, *, batch: int = 1000) -> tuple[list[str], list[str]]:
    """(deleted ARNs, ARNs that are due but protected) for this sweep."""
    with catalog.db.transaction(deps.engine) as conn:
        due = catalog.recovery_points.list_due_for_deletion(conn, before=now, limit=batch)
    deleted: list[str] = []
    waiting: list[str] = []
    for rp in due:
        if not vault_lock.may_expire(deps, rp, now).allowed:
            waiting.append(rp.arn)
        elif expire_point(deps, rp, now) is True:
            deleted.append(rp.arn)
    return deleted, waiting


def expire_point(deps: Deps, rp: jobs.RecoveryPoint, now: datetime) -> bool | None:
    """Forget the point in its vault's repository, drop it from the catalog, mark the
    vault for prune. None if another sweeper owns it; False if it failed (retried).
    The caller has asked :func:`vault_lock.may_expire` first."""
    assert rp.delete_at is not None  # listed as due for deletion
    with catalog.db.transaction(deps.engine) as conn:
        started = catalog.schedule_runs.start_lifecycle_run(
            conn,
            recovery_point_arn=rp.arn,
            action=EXPIRE,
            due_at=rp.delete_at,
            now=now,
            backup_vault_arn=rp.backup_vault_arn,
        )
        if not started:
            return None
        catalog.recovery_points.set_status(conn, rp.arn, "DELETING", "expired by lifecycle")
        vault = catalog.vaults.get_by_arn(conn, rp.backup_vault_arn)

    def close_record(conn: Connection) -> None:
        catalog.schedule_runs.finish_lifecycle_run(
            conn, recovery_point_arn=rp.arn, action=EXPIRE, status="COMPLETED", now=now
        )

    try:
        recovery_points.forget_point(deps, vault, rp, now, then=close_record)
    except (SnowvaultError, OSError) as exc:
        _retry_later(deps, rp, exc)
        return False
    return True


def _retry_later(deps: Deps, rp: jobs.RecoveryPoint, exc: BaseException) -> None:
    if isinstance(exc, errors.ObjectLocked):
        log.warning("expiry: %s is still retained by the store; kept", rp.arn)
    else:
        log.warning("expiring %s failed, will retry: %s", rp.arn, exc)
    with catalog.db.transaction(deps.engine) as conn:
        catalog.recovery_points.set_status(conn, rp.arn, rp.status, str(exc))
        catalog.schedule_runs.retry_lifecycle_run(conn, recovery_point_arn=rp.arn, action=EXPIRE)
