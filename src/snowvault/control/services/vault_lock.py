"""Vault Lock: put/delete the lock, and every enforcement point that asks the model.

Services enforce; the store enforces again where it can:

- :func:`put` / :func:`delete` (PutBackupVaultLockConfiguration /
  DeleteBackupVaultLockConfiguration) follow :mod:`model.vault_lock`; a vault on S3 must
  have Object Lock on its bucket before a lock is accepted.
- :func:`check_delete`, :func:`check_lifecycle` guard DeleteRecoveryPoint and
  UpdateRecoveryPointLifecycle (legal holds first, then the lock, via
  :mod:`model.decisions`); :func:`may_expire` is the lifecycle sweeper's question;
  :func:`check_job_retention` fails a backup or copy job whose retention is outside
  [MinRetentionDays, MaxRetentionDays].
- :func:`protect_recovery_point` gives the packs, the manifest and the config of a point
  in a locked vault an Object Lock retention reaching its DeleteAt (extend-only, so a
  pack shared by many points ends up retained until the latest of them);
  :func:`refresh_store_retention` does it for every point of a vault (after a Put, and
  when a compliance lock becomes immutable so the mode turns COMPLIANCE).

While a lock is in place (any mode, any principal, root included) a recovery point it
protects cannot be deleted or have its retention shortened: AWS's Vault Lock "prevents
attempts to delete any recovery point". Governance mode (and compliance mode in grace
time) only means the lock itself can be removed by a caller allowed
``backup:DeleteBackupVaultLockConfiguration``; after that, such a caller's deletes also
bypass the store's GOVERNANCE retention left on the objects (the S3 analogue of
s3:BypassGovernanceRetention). Never under a legal hold.

Must not depend on the scheduler, the composition root or any interface.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Connection

from snowvault.control import catalog
from snowvault.control.catalog.db import Record
from snowvault.control.model import decisions, jobs, legal_holds, lifecycle
from snowvault.control.model import vault_lock as model
from snowvault.control.services import authorization, vaults
from snowvault.control.services import legal_holds as holds_service
from snowvault.control.services.base import Caller, Deps
from snowvault.control.services.errors import LegalHoldActive, ObjectLockMissing, VaultLocked
from snowvault.core.errors import InvalidInput, PermissionDenied, SnowvaultError
from snowvault.engine import crypto, prune
from snowvault.engine.backends import base as backends
from snowvault.engine.backends.url import open_backend
from snowvault.engine.repository import MANIFEST_PREFIX, Repository

log = logging.getLogger("snowvault.sweepers")

OPEN_ENDED_HORIZON = timedelta(days=365)
"""Store retention given to points kept forever; the refresh extends it again."""


def raise_for(decision: model.Decision) -> None:
    """Raise the error class carrying ``decision.code``; nothing when allowed."""
    if decision.allowed:
        return
    if decision.code == model.INVALID_RESOURCE_STATE:
        raise LegalHoldActive(detail=decision.message)
    if decision.code == model.ACCESS_DENIED:
        raise PermissionDenied(detail=decision.message)
    raise VaultLocked(detail=decision.message)


# ------------------------------------------------------------------------ reading a lock


def lock_of(conn: Connection, vault: Record) -> model.LockConfig | None:
    created = catalog.legal_holds.lock_created_at(conn, vault["arn"])
    if created is None:
        return None
    return model.LockConfig(
        vault["min_retention_days"],
        vault["max_retention_days"],
        vault["changeable_for_days"],
        vault["lock_date"],
        created,
    )


def describe_fields(deps: Deps, vault: Record) -> dict[str, Any]:
    """Locked, MinRetentionDays, MaxRetentionDays, LockDate for Describe/ListBackupVaults."""
    with catalog.db.transaction(deps.engine) as conn:
        lock = lock_of(conn, vault)
    if lock is None:
        return {"Locked": False}
    out: dict[str, Any] = {"Locked": True}
    for key, value in (
        ("MinRetentionDays", lock.min_days),
        ("MaxRetentionDays", lock.max_days),
        ("LockDate", lock.lock_date),
    ):
        if value is not None:
            out[key] = value
    return out


# ------------------------------------------------------------------ managing the lock


def _may_bypass(deps: Deps, caller: Caller, vault: Record) -> bool:
    action = "backup:DeleteBackupVaultLockConfiguration"
    return authorization.allowed(deps, caller, action, vault["arn"], vault_arn=vault["arn"])


def check_store_supports_lock(vault: Record) -> None:
    """Raise :class:`ObjectLockMissing` when the vault is on S3 without Object Lock."""
    url = str(vault["storage_url"])
    if not url.startswith("s3://"):
        return  # local storage: enforcement is the services' (docs/design/immutability.md)
    backend = open_backend(url)
    try:
        if not backend.capabilities.retention:
            raise ObjectLockMissing(location=url)
    finally:
        backend.close()


def put(
    deps: Deps,
    caller: Caller,
    vault_name: str,
    *,
    min_days: int | None = None,
    max_days: int | None = None,
    changeable_for_days: int | None = None,
) -> Record:
    """PutBackupVaultLockConfiguration (the API hook has authorized the caller)."""
    vault = vaults.get(deps, caller, vault_name)
    new = model.new_lock(min_days, max_days, changeable_for_days, caller.now)
    with catalog.db.transaction(deps.engine) as conn:
        raise_for(model.can_change_lock(lock_of(conn, vault), caller.now, True))
    check_store_supports_lock(vault)
    with catalog.db.transaction(deps.engine) as conn:
        row = catalog.vaults.set_lock(
            conn,
            vault["arn"],
            min_retention_days=new.min_days,
            max_retention_days=new.max_days,
            changeable_for_days=new.changeable_for_days,
            lock_date=new.lock_date,
        )
        catalog.legal_holds.put_lock(conn, vault["arn"], new.created_at)
        row = catalog.vaults.set_locked(conn, vault["arn"], True)  # Locked: any lock in force
    refresh_store_retention(deps, row, caller.now)
    return row


def delete(deps: Deps, caller: Caller, vault_name: str) -> None:
    """DeleteBackupVaultLockConfiguration: refused from LockDate on, for everyone."""
    vault = vaults.get(deps, caller, vault_name)
    with catalog.db.transaction(deps.engine) as conn:
        raise_for(model.can_delete_lock(lock_of(conn, vault), caller.now, True))
        catalog.vaults.clear_lock(conn, vault["arn"])
        catalog.legal_holds.delete_lock(conn, vault["arn"])


# ------------------------------------------------------------------------ enforcement


def _point(rp: jobs.RecoveryPoint) -> decisions.RecoveryPoint:
    return decisions.RecoveryPoint(
        rp.backup_vault_name, rp.resource_arn, rp.creation_date, rp.delete_at
    )


def _inputs(
    deps: Deps, vault: Record, rp: jobs.RecoveryPoint
) -> tuple[model.LockConfig | None, list[legal_holds.LegalHold]]:
    with catalog.db.transaction(deps.engine) as conn:
        lock = lock_of(conn, vault)
        held = holds_service.restraining(conn, account_id=rp.account_id, region=rp.region)
    return lock, held


def check_delete(deps: Deps, caller: Caller, vault: Record, rp: jobs.RecoveryPoint) -> bool:
    """DeleteRecoveryPoint's guard: raise LegalHoldActive or VaultLocked, or return whether
    the store's GOVERNANCE retention (left by a lock since removed) is to be bypassed —
    only for a caller allowed to remove a lock, and only once no lock is in place."""
    lock, held = _inputs(deps, vault, rp)
    raise_for(decisions.may_delete_recovery_point(lock, held, _point(rp), caller.now, False))
    return lock is None and _may_bypass(deps, caller, vault)


def check_lifecycle(
    deps: Deps,
    caller: Caller,
    vault: Record,
    rp: jobs.RecoveryPoint,
    new_delete_at: datetime | None,
) -> None:
    """UpdateRecoveryPointLifecycle's guard (shortening in a locked vault is refused)."""
    with catalog.db.transaction(deps.engine) as conn:
        lock = lock_of(conn, vault)
    retention = _point(rp).retention
    raise_for(model.can_shorten_lifecycle(lock, retention, new_delete_at, caller.now, False))


def may_expire(deps: Deps, rp: jobs.RecoveryPoint, now: datetime) -> model.Decision:
    """The lifecycle sweeper's question for one due recovery point."""
    with catalog.db.transaction(deps.engine) as conn:
        vault = catalog.vaults.get_by_arn(conn, rp.backup_vault_arn)
    lock, held = _inputs(deps, vault, rp)
    return decisions.may_expire(lock, held, _point(rp), now)


def check_job_retention(deps: Deps, vault: Record, lifecycle_doc: Mapping[str, Any] | None) -> None:
    """Fail a backup or copy job whose retention is outside the lock's [Min, Max]."""
    with catalog.db.transaction(deps.engine) as conn:
        lock = lock_of(conn, vault)
    lc = lifecycle.lifecycle_from_api(lifecycle_doc)
    days = None if lc is None else lc.delete_after_days
    reason = model.check_retention(lock, days)
    if reason is not None:
        raise InvalidInput(detail=f"backup vault {vault['name']} is locked: {reason}")


# ---------------------------------------------------------------------- store retention


def _store_retention(
    lock: model.LockConfig, rps: list[jobs.RecoveryPoint], now: datetime
) -> backends.Retention | None:
    need = model.required_store_retention(lock, [_point(rp).retention for rp in rps], now)
    until = need.until
    if need.open_ended:
        horizon = now + OPEN_ENDED_HORIZON
        until = horizon if until is None else max(until, horizon)
    if until is None or until <= now:
        return None
    return backends.Retention(need.mode, until)


def _retain(repo: Repository, rp: jobs.RecoveryPoint, retention: backends.Retention) -> int:
    """Extend the retention of the packs, the manifest and the config ``rp`` needs."""
    rp_id = rp.engine_recovery_point_id
    if not rp_id:
        return 0  # no engine data: nothing to retain
    names = prune.packs_of(repo, repo.load_manifest(rp_id))
    names |= {MANIFEST_PREFIX + rp_id, "config"}
    for name in sorted(names):
        repo.backend.set_retention(name, retention)
    return len(names)


def protect_recovery_point(deps: Deps, vault: Record, rp: jobs.RecoveryPoint, now: datetime) -> int:
    """Retain the objects ``rp`` needs on a store with Object Lock; returns how many."""
    with catalog.db.transaction(deps.engine) as conn:
        lock = lock_of(conn, vault)
    if lock is None:
        return 0
    retention = _store_retention(lock, [rp], now)
    if retention is None:
        return 0
    with vaults.open_repository(deps, vault) as repo:
        if not repo.backend.capabilities.retention:
            return 0
        return _retain(repo, rp, retention)


def _points(deps: Deps, vault: Record) -> list[jobs.RecoveryPoint]:
    """Every recovery point of ``vault`` that has engine data."""
    out: list[jobs.RecoveryPoint] = []
    token = None
    while True:
        with catalog.db.transaction(deps.engine) as conn:
            page = catalog.recovery_points.list_by_vault(conn, vault_arn=vault["arn"], token=token)
        out.extend(rp for rp in page.items if rp.engine_recovery_point_id)
        token = page.next_token
        if token is None:
            return out


def refresh_store_retention(deps: Deps, vault: Record, now: datetime) -> int:
    """Re-apply store retention for every recovery point of ``vault`` (one repository
    opening); returns how many objects were given a retention."""
    with catalog.db.transaction(deps.engine) as conn:
        lock = lock_of(conn, vault)
    if lock is None:
        return 0
    wanted: list[tuple[jobs.RecoveryPoint, backends.Retention]] = []
    for rp in _points(deps, vault):
        retention = _store_retention(lock, [rp], now)
        if retention is not None:
            wanted.append((rp, retention))
    if not wanted:
        return 0
    with vaults.open_repository(deps, vault) as repo:
        if not repo.backend.capabilities.retention:
            return 0
        return sum(_retain(repo, rp, retention) for rp, retention in wanted)


# ---------------------------------------------------------------- the retention sweeper

RENEW_BEFORE = timedelta(days=30)
"""Open-ended retention is renewed when less than this is left of it."""


def _fingerprint(lock: model.LockConfig, rps: list[jobs.RecoveryPoint], now: datetime) -> str:
    """What the store retention of a vault depends on: the lock, the store mode it asks
    for now, and each point's identity and DeleteAt. Equal fingerprints: nothing to do."""
    need = model.required_store_retention(lock, [], now)
    parts = [
        f"{lock.created_at.isoformat()}|{lock.min_days}|{lock.lock_date}|{need.mode}",
        *sorted(f"{rp.arn}|{rp.delete_at}" for rp in rps),
    ]
    return crypto.content_hash("\n".join(parts).encode()).hex()


def _renew_at(
    lock: model.LockConfig, rps: list[jobs.RecoveryPoint], now: datetime
) -> datetime | None:
    """When open-ended retention applied ``now`` must be renewed; None when no point is
    kept forever."""
    need = model.required_store_retention(lock, [_point(rp).retention for rp in rps], now)
    if not need.open_ended:
        return None
    return now + OPEN_ENDED_HORIZON - RENEW_BEFORE


def _sweep_vault(deps: Deps, vault: Record, now: datetime) -> bool:
    """Refresh one vault's store retention when its inputs changed or its open-ended
    retention is due for renewal; True when the store was written to."""
    with catalog.db.transaction(deps.engine) as conn:
        lock = lock_of(conn, vault)
        record = catalog.maintenance.retention_record(conn, vault["arn"])
    if lock is None:
        return False
    rps = _points(deps, vault)
    fingerprint = _fingerprint(lock, rps, now)
    unchanged = record is not None and record.fingerprint == fingerprint
    if unchanged and (record is None or record.renew_at is None or now < record.renew_at):
        return False
    refresh_store_retention(deps, vault, now)
    applied = catalog.maintenance.RetentionRecord(fingerprint, _renew_at(lock, rps, now))
    with catalog.db.transaction(deps.engine) as conn:
        catalog.maintenance.put_retention_record(conn, vault["arn"], applied)
    return True


def sweep_store_retention(deps: Deps, now: datetime) -> list[str]:
    """The sweeper step: re-apply :func:`model.required_store_retention` to locked vaults
    whose store retention may be stale; returns the ARNs of the vaults refreshed.

    A vault is refreshed when a point appeared (its retention may never have been set: a
    crash between recording it and protecting it), a DeleteAt or the lock changed, the
    mode the lock asks for changed (a compliance lock became immutable: GOVERNANCE turns
    COMPLIANCE), or the rolling retention of points kept forever is within
    :data:`RENEW_BEFORE` of running out. Otherwise it costs catalog reads only.
    """
    refreshed = []
    for vault in vaults.all_vaults(deps):
        try:
            if _sweep_vault(deps, vault, now):
                refreshed.append(vault["arn"])
        except SnowvaultError:
            log.exception("store retention sweep of %s failed; retried next sweep", vault["arn"])
    return refreshed
