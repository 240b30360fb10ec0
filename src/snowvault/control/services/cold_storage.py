"""Cold storage: the data of COLD recovery points moves to the region's cold location.

A region may have a cold location (``cold_regions`` in config.json, next to
``regions``). A vault there has a cold store beside its storage
(``Storage.cold_url``), and its repository opens over both
(:class:`snowvault.engine.backends.tiered.TieredBackend`): reads find a pack in either
tier, so restore, browse, check, prune and copies need nothing new — a restore from
cold just reads the cold store.

MoveToColdStorageAfterDays is applied in two steps: the ``cold`` sweep records the
transition (StorageClass COLD, a ``lifecycle_runs`` record), then the ``cold-data``
sweep (:func:`move_due`) moves, for each vault with a transition since its last move,
the packs that only COLD points need (:func:`snowvault.engine.cold.move_cold_packs`;
and each such vault again a day after its last move, for what a prune repacked warm),
under the vault's shared repository lock (a prune, which holds it exclusively, is
waited for another time). Packs a warm point shares stay warm; packs under store
retention (Vault Lock on S3) stay where they are. A region without a cold location
keeps cold points' data in place (StorageClass COLD is then a label and a price).

Must not depend on the scheduler, the composition root or any interface.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from snowvault.control import catalog
from snowvault.control.services import vaults
from snowvault.control.services.base import Deps
from snowvault.core.errors import SnowvaultError
from snowvault.engine import cold, locks

log = logging.getLogger("snowvault.cold")

RECHECK = timedelta(days=1)
"""A vault with cold points is looked at again this long after its last move even with
no new transition: a prune that repacked half-used cold packs wrote their blobs warm."""


def move_vault(deps: Deps, vault_arn: str, now: datetime) -> cold.ColdMove | None:
    """Move the vault's cold-only packs to its cold store; None: it has no cold store
    (or is gone). Raises RepositoryLocked while a prune holds the vault."""
    with catalog.db.read_transaction(deps.engine) as conn:
        vault = catalog.vaults.find_by_arn(conn, vault_arn)
        points = [] if vault is None else catalog.cold_storage.cold_points(conn, vault_arn)
    if vault is None or deps.storage.cold_url(vault["region"], vault["storage_url"]) is None:
        return None
    with (
        vaults.open_repository(deps, vault) as repo,
        locks.locked_repository(repo, deps.clock, exclusive=False),
    ):
        return cold.move_cold_packs(repo, points)


def move_due(deps: Deps, now: datetime) -> list[str]:
    """The sweep: each vault with a point turned COLD since its last move; returns the
    vaults whose packs moved. A vault that fails (locked by a prune, unreachable) keeps
    its turn for the next pass."""
    with catalog.db.read_transaction(deps.engine) as conn:
        due = catalog.cold_storage.vaults_to_move(conn, recheck_before=now - RECHECK)
    touched = []
    for arn in due:
        try:
            moved = move_vault(deps, arn, now)
        except (SnowvaultError, OSError) as exc:
            log.warning("cold storage: vault %s not moved now: %s", arn, exc)
            continue
        with catalog.db.transaction(deps.engine) as conn:
            catalog.cold_storage.mark_moved(conn, arn, now)
        if moved is not None and moved.packs:
            log.info(
                "vault %s: %d pack(s), %d bytes moved to cold", arn, len(moved.packs), moved.bytes
            )
            touched.append(arn)
    return touched
