"""The integrity watch: reconcile the catalog's recovery points with their vault's store.

    flagged = reconcile(deps, now)      # the ``integrity`` sweep: one due vault per pass

Each pass takes the vault least recently reconciled whose last check is older than
:data:`INTERVAL` (never-checked vaults first), lists the manifests in its store (a
listing: no key, no lock, no data read) and compares them with the vault's finished
recovery points in the catalog. A point whose manifest is gone gets the StatusMessage
:data:`MISSING` ... (DescribeRecoveryPoint shows it), raises the vault's
RECOVERY_POINT_MODIFIED notification once, and counts in the
``snowvault_vault_missing_manifests`` metric; a point whose manifest is back loses the
message. Catalog rows are read BEFORE the listing, and a flag is written only to a row
that still exists, so a point deleted meanwhile is not reported.

Not done here (yet): reading the packs themselves (``snowvault repo check`` does), or
reporting manifests the catalog does not know (the orphan prune handles a failed
backup's; an imported vault's are left alone).

Must not depend on the scheduler or any interface.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from snowvault.control import catalog
from snowvault.control.services import notifications
from snowvault.control.services.base import Deps
from snowvault.engine.backends.url import open_backend
from snowvault.engine.repository import MANIFEST_PREFIX

log = logging.getLogger("snowvault.integrity")

INTERVAL = timedelta(hours=24)
MISSING = "MISSING:"
"""The first word of the StatusMessage of a point whose manifest is gone."""


def _message(engine_id: str, now: datetime) -> str:
    return (
        f"{MISSING} the manifest recovery-points/{engine_id} is not in the vault's store "
        f"(integrity watch, {now.isoformat()}); this point cannot be restored"
    )


def reconcile(deps: Deps, now: datetime) -> list[str]:
    """The sweep: reconcile one due vault; the ARNs of the points newly found missing."""
    with catalog.db.read_transaction(deps.engine) as conn:
        due = catalog.observability.integrity_due(conn, before=now - INTERVAL, limit=1)
    return [arn for vault_arn in due for arn in reconcile_vault(deps, vault_arn, now)]


def reconcile_vault(deps: Deps, vault_arn: str, now: datetime) -> list[str]:
    with catalog.db.read_transaction(deps.engine) as conn:
        vault = catalog.vaults.find_by_arn(conn, vault_arn)
        points = catalog.observability.stored_points(conn, vault_arn)
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
    flagged: list[str] = []
    missing = 0
    with catalog.db.transaction(deps.engine) as conn:
        for point in points:
            marked = (point.status_message or "").startswith(MISSING)
            if point.engine_id in present:
                if marked:
                    catalog.observability.set_point_message(conn, point.arn, None)
                continue
            missing += 1
            if marked:
                continue
            if catalog.observability.set_point_message(
                conn, point.arn, _message(point.engine_id, now)
            ):
                flagged.append(point.arn)
                _announce(conn, vault, point.arn, now)
        catalog.observability.integrity_done(conn, vault_arn, now, missing)
    if flagged:
        log.warning(
            "integrity watch: %d recovery point(s) of %s lost their manifest",
            len(flagged),
            vault_arn,
        )
    return flagged


def _announce(conn: object, vault: dict[str, object], point_arn: str, now: datetime) -> None:
    config = vault.get("notifications")
    if not isinstance(config, dict) or "RECOVERY_POINT_MODIFIED" not in config.get(
        "BackupVaultEvents", ()
    ):
        return
    attributes = {
        "EventType": {"Type": "String", "Value": "RECOVERY_POINT"},
        "State": {"Type": "String", "Value": "MISSING"},
        "RecoveryPointArn": {"Type": "String", "Value": point_arn},
        "BackupVaultEvent": {"Type": "String", "Value": "RECOVERY_POINT_MODIFIED"},
    }
    notifications.publish(
        conn,
        str(config["SNSTopicArn"]),
        notifications.SUBJECT,
        f"Recovery point {point_arn} was modified: its manifest is missing from the "
        "vault's store, so it cannot be restored.",
        attributes,
        now,
    )
