"""What the sweeps owe each vault: one ``vault_maintenance`` row per vault, named queries.

- a pending prune (DeleteRecoveryPoint or an expiry forgot a point; the prune frees the
  data no other point needs), and whether it may bypass the store's GOVERNANCE retention
  (a delete by a caller allowed to remove a lock, after the lock went);
- an orphan prune due at a given time (a backup into the vault failed, was stopped or
  lost its worker; its unreferenced packs go after a grace period);
- the store-retention sweep's fingerprint of what it last applied and when open-ended
  retention is to be renewed.

Before revision 0007 these were string keys in the ``settings`` table
(``prune-pending:<arn>``, ``prune-bypass-governance:<arn>``, ``orphan-prune:<arn>``,
``store-retention:<arn>``); the migration moved them here.

A vault row is written by an upsert, so two servers marking the same vault do not
clash; a clear takes the mark it read and leaves a newer one in place.

Must not depend on anything above ``snowvault.core``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from snowvault.control.catalog.db import is_sqlite
from snowvault.control.catalog.tables import vault_maintenance as vm


@dataclass(frozen=True)
class PendingPrune:
    """A vault to prune after a recovery point was forgotten."""

    vault_arn: str
    since: datetime
    bypass_governance: bool


@dataclass(frozen=True)
class OrphanPrune:
    """A vault to rid of a failed backup's orphan data once ``due_at`` has passed."""

    vault_arn: str
    due_at: datetime


@dataclass(frozen=True)
class RetentionRecord:
    """What the store-retention sweep last applied to a vault."""

    fingerprint: str
    renew_at: datetime | None


def _upsert(conn: Connection, vault_arn: str, **values: Any) -> None:
    insert = sqlite.insert(vm) if is_sqlite(conn) else postgresql.insert(vm)
    stmt = insert.values(vault_arn=vault_arn, **values)
    update = dict(values)
    if "prune_bypass_governance" in update:  # a bypass asked for stays until the prune
        update["prune_bypass_governance"] = sa.or_(
            vm.c.prune_bypass_governance, stmt.excluded.prune_bypass_governance
        )
    conn.execute(stmt.on_conflict_do_update(index_elements=["vault_arn"], set_=update))


def _drop_if_empty(conn: Connection, vault_arn: str) -> None:
    conn.execute(
        vm.delete().where(
            vm.c.vault_arn == vault_arn,
            vm.c.prune_pending_since.is_(None),
            vm.c.orphan_prune_due_at.is_(None),
            vm.c.retention_fingerprint.is_(None),
        )
    )


# --- prune after a forgotten point ------------------------------------------------------


def mark_prune_pending(
    conn: Connection, vault_arn: str, now: datetime, *, bypass_governance: bool = False
) -> None:
    """Ask for a prune of the vault (again: the latest mark wins, a bypass stays)."""
    _upsert(conn, vault_arn, prune_pending_since=now, prune_bypass_governance=bypass_governance)


def due_prunes(conn: Connection) -> list[PendingPrune]:
    """Every vault marked for a prune, by ARN (a prune is due as soon as it is asked)."""
    stmt = (
        sa.select(vm.c.vault_arn, vm.c.prune_pending_since, vm.c.prune_bypass_governance)
        .where(vm.c.prune_pending_since.is_not(None))
        .order_by(vm.c.vault_arn)
    )
    return [PendingPrune(r[0], r[1], bool(r[2])) for r in conn.execute(stmt)]


def clear_prune(conn: Connection, done: PendingPrune) -> bool:
    """The prune asked for by ``done`` ran; False (mark kept) if the vault was marked
    again since."""
    stmt = (
        vm.update()
        .where(vm.c.vault_arn == done.vault_arn, vm.c.prune_pending_since == done.since)
        .values(prune_pending_since=None, prune_bypass_governance=False)
    )
    cleared = bool(conn.execute(stmt).rowcount)
    _drop_if_empty(conn, done.vault_arn)
    return cleared


# --- orphan prune after a failed backup ---------------------------------------------------


def mark_orphans(conn: Connection, vault_arn: str, due_at: datetime) -> None:
    """Ask for an orphan prune of the vault at ``due_at`` (a later mark moves it on)."""
    _upsert(conn, vault_arn, orphan_prune_due_at=due_at)


def orphan_prunes(conn: Connection) -> list[OrphanPrune]:
    """Every orphan-prune mark, due or not (the sweep drops those of deleted vaults)."""
    stmt = (
        sa.select(vm.c.vault_arn, vm.c.orphan_prune_due_at)
        .where(vm.c.orphan_prune_due_at.is_not(None))
        .order_by(vm.c.vault_arn)
    )
    return [OrphanPrune(r[0], r[1]) for r in conn.execute(stmt)]


def clear_orphans(conn: Connection, done: OrphanPrune) -> bool:
    """The orphan prune of ``done`` ran; False (mark kept) if the vault was marked again."""
    stmt = (
        vm.update()
        .where(vm.c.vault_arn == done.vault_arn, vm.c.orphan_prune_due_at == done.due_at)
        .values(orphan_prune_due_at=None)
    )
    cleared = bool(conn.execute(stmt).rowcount)
    _drop_if_empty(conn, done.vault_arn)
    return cleared


# --- the store-retention sweep's record ----------------------------------------------------


def retention_record(conn: Connection, vault_arn: str) -> RetentionRecord | None:
    row = conn.execute(
        sa.select(vm.c.retention_fingerprint, vm.c.retention_renew_at).where(
            vm.c.vault_arn == vault_arn, vm.c.retention_fingerprint.is_not(None)
        )
    ).first()
    return None if row is None else RetentionRecord(row[0], row[1])


def put_retention_record(conn: Connection, vault_arn: str, record: RetentionRecord) -> None:
    _upsert(
        conn,
        vault_arn,
        retention_fingerprint=record.fingerprint,
        retention_renew_at=record.renew_at,
    )


# --- a vault that goes ------------------------------------------------------------------


def forget_vault(conn: Connection, vault_arn: str) -> None:
    """Drop everything owed to a deleted vault."""
    conn.execute(vm.delete().where(vm.c.vault_arn == vault_arn))
