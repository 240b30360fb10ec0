"""The integrity watch: reconcile the catalog's recovery points with their vault's store,
and read a rotating share of the vault's packs so every byte is read within a few days.

    flagged = reconcile(deps, now)      # the ``integrity`` sweep: one due vault per pass

Each pass takes the vault least recently checked whose last check is older than
:data:`INTERVAL` (never-checked vaults first), and:

1. lists the manifests in its store (a listing: no key, no lock, no data read) and
   compares them with the vault's finished recovery points in the catalog. A point whose
   manifest is gone gets the StatusMessage :data:`MISSING` ...; a point whose manifest is
   back loses it;
2. opens the repository (:func:`vaults.open_repository`: warm + cold store, so data moved
   to cold storage is found where it went) under the vault's SHARED lock and runs the
   engine's check with ``read_data`` over today's share of packs (:func:`todays_share`:
   every pack once every ``Deps.integrity_days`` days, default 30, plus the shares of
   days no check ran since the last one). The structure pass of that check also reads
   every index segment, every pack header and every tree each time, so a truncated pack
   or a lost index is found at the next daily check, a flipped byte inside a pack at the
   check whose share holds it. A point the check names gets the StatusMessage
   :data:`DAMAGED` ... (it stays until the point is deleted: the watch does not clear it).

A newly flagged point (either kind) raises the vault's RECOVERY_POINT_MODIFIED
notification once, is recorded in the trail (``RecoveryPointIntegrityFailed``) and
counts in ``snowvault_vault_missing_manifests`` / ``snowvault_vault_damaged_recovery_points``.

False alarms are avoided by order: catalog rows are read BEFORE the store, only those
points can be flagged (a backup finishing meanwhile is not judged on a half-read index),
and a flag is written only to a row that still exists (a point deleted meanwhile is not
reported). A prune holding the vault's lock postpones the whole check to the next pass.

Not done here: reporting manifests the catalog does not know (the orphan prune handles a
failed backup's; an imported vault's are left alone), or repairing anything.

Must not depend on the scheduler or any interface.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

from snowvault.control import catalog
from snowvault.control.services import notifications, trail, vaults
from snowvault.control.services.base import Deps
from snowvault.core.errors import SnowvaultError
from snowvault.engine import check, locks
from snowvault.engine.backends.url import open_backend
from snowvault.engine.repository import MANIFEST_PREFIX

log = logging.getLogger("snowvault.integrity")

INTERVAL = timedelta(hours=24)
MISSING = "MISSING:"
"""The first word of the StatusMessage of a point whose manifest is gone."""
DAMAGED = "DAMAGED:"
"""The first word of the StatusMessage of a point a pack read found damaged."""


def todays_share(pack_id: str, day: date, days: int) -> bool:
    """Whether pack ``pack_id`` (hex SHA-256) is read on ``day``: each pack falls on one
    day of every ``days`` (its name is uniform, so the shares are even).

    >>> sum(todays_share(f"{n:064x}", date(2026, 1, 1), 3) for n in range(9))
    3
    """
    return int(pack_id[:8], 16) % days == day.toordinal() % days


def shares_due(last: datetime | None, now: datetime, days: int) -> set[int]:
    """The shares (day ordinals modulo ``days``) to read at ``now``: today's and those
    of the days since ``last`` that no check read (at most all of them)."""
    today = now.astimezone(UTC).date().toordinal()
    first = today if last is None else last.astimezone(UTC).date().toordinal() + 1
    return {d % days for d in range(max(first, today - days + 1), today + 1)}


def _missing_message(engine_id: str, now: datetime) -> str:
    return (
        f"{MISSING} the manifest recovery-points/{engine_id} is not in the vault's store "
        f"(integrity watch, {now.isoformat()}); this point cannot be restored"
    )


def _damaged_message(problem: str, now: datetime) -> str:
    return (
        f"{DAMAGED} {problem[:400]} (integrity watch, {now.isoformat()}); "
        "a restore of this point may fail"
    )


def reconcile(deps: Deps, now: datetime) -> list[str]:
    """The sweep: check one due vault; the ARNs of the points newly flagged."""
    with catalog.db.read_transaction(deps.engine) as conn:
        due = catalog.observability.integrity_due(conn, before=now - INTERVAL, limit=1)
    return [arn for vault_arn in due for arn in reconcile_vault(deps, vault_arn, now)]


def reconcile_vault(deps: Deps, vault_arn: str, now: datetime) -> list[str]:
    with catalog.db.read_transaction(deps.engine) as conn:
        vault = catalog.vaults.find_by_arn(conn, vault_arn)
        points = catalog.observability.stored_points(conn, vault_arn)
        last = catalog.observability.checked_at(conn, vault_arn)
    if vault is None:
        return []
    try:
        backend = open_backend(vault["storage_url"])
        try:
            present = {o.name[len(MANIFEST_PREFIX) :] for o in backend.list(MANIFEST_PREFIX)}
        finally:
            backend.close()
    except Exception as exc:  # an unreachable store is reported, not fatal
        log.warning("integrity watch: cannot list the store of %s: %s", vault_arn, exc)
        return []
    damage = _read_share(deps, vault, {p.engine_id for p in points}, last, now)
    if damage is None:
        return []  # a prune holds the vault: the whole check waits for the next pass
    flagged: list[str] = []
    missing = 0
    with catalog.db.transaction(deps.engine) as conn:
        for point in points:
            message = point.status_message or ""
            if point.engine_id in present:
                if message.startswith(MISSING):
                    catalog.observability.set_point_message(conn, point.arn, None)
                    message = ""
                found = damage.get(point.engine_id)
                if found is None or message.startswith(DAMAGED):
                    continue
                new, state = _damaged_message(found, now), "DAMAGED"
            else:
                missing += 1
                if message.startswith(MISSING):
                    continue
                new, state = _missing_message(point.engine_id, now), "MISSING"
            if catalog.observability.set_point_message(conn, point.arn, new):
                flagged.append(point.arn)
                _announce(conn, vault, point.arn, state, now)
                trail.emit(
                    deps,
                    "RecoveryPointIntegrityFailed",
                    point.arn,
                    {"recoveryPointArn": point.arn, "state": state, "statusMessage": new},
                    now,
                )
        catalog.observability.integrity_done(conn, vault_arn, now, missing)
    if flagged:
        log.warning(
            "integrity watch: %d recovery point(s) of %s flagged (missing or damaged)",
            len(flagged),
            vault_arn,
        )
    return flagged


def _read_share(
    deps: Deps,
    vault: Mapping[str, Any],
    known: set[str],
    last: datetime | None,
    now: datetime,
) -> dict[str, str] | None:
    """Engine id -> the first problem naming it, for the points in ``known``, after
    reading the shares of packs due; None when a prune holds the vault's lock. A store
    or key that cannot be opened is logged and reported as no damage (the manifest
    listing above already ran)."""
    days = max(1, deps.integrity_days)
    shares = shares_due(last, now, days)

    def wanted(pack_id: str) -> bool:
        return int(pack_id[:8], 16) % days in shares

    try:
        with (
            vaults.open_repository(deps, dict(vault)) as repo,
            locks.locked_repository(repo, deps.clock, exclusive=False),
        ):
            report = check.check(repo, read_data=True, select=wanted)
    except locks.RepositoryLocked:
        log.info("integrity watch: %s is locked (a prune); checked next pass", vault["arn"])
        return None
    except (SnowvaultError, OSError) as exc:
        log.warning("integrity watch: cannot read the packs of %s: %s", vault["arn"], exc)
        return {}
    damage: dict[str, str] = {}
    for problem in report.problems:
        for rp_id in problem.recovery_points:
            if rp_id in known:
                damage.setdefault(rp_id, f"{problem.object}: {problem.detail}")
    return damage


def _announce(
    conn: object, vault: Mapping[str, Any], point_arn: str, state: str, now: datetime
) -> None:
    config = vault.get("notifications")
    if not isinstance(config, dict) or "RECOVERY_POINT_MODIFIED" not in config.get(
        "BackupVaultEvents", ()
    ):
        return
    attributes = {
        "EventType": {"Type": "String", "Value": "RECOVERY_POINT"},
        "State": {"Type": "String", "Value": state},
        "RecoveryPointArn": {"Type": "String", "Value": point_arn},
        "BackupVaultEvent": {"Type": "String", "Value": "RECOVERY_POINT_MODIFIED"},
    }
    why = (
        "its manifest is missing from the vault's store, so it cannot be restored."
        if state == "MISSING"
        else "data it needs does not read back whole from the vault's store."
    )
    notifications.publish(
        conn,
        str(config["SNSTopicArn"]),
        notifications.SUBJECT,
        f"Recovery point {point_arn} was modified: {why}",
        attributes,
        now,
    )
