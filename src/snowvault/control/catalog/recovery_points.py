"""Recovery points: create, describe, list (by vault, by resource), lifecycle, delete.

Rows come back as :class:`~snowvault.control.model.jobs.RecoveryPoint` records. Lists are
newest first, keyset-paginated on (creation_date, arn) with an index per list.
``move_to_cold_at`` and ``delete_at`` are the calculated lifecycle (the model computes
them, the catalog stores them), indexed so the sweeper finds what is due cheaply.

    >>> # page = recovery_points.list_by_vault(conn, vault_arn=arn,
    >>> #            filters=RecoveryPointFilters(resource_type="Directory"), limit=100)

Must not depend on anything above ``snowvault.core``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from snowvault.control.catalog import pagination, tags, vaults
from snowvault.control.catalog.tables import recovery_points as rp
from snowvault.control.model import jobs
from snowvault.core.errors import AlreadyExists, NotFound

_ORDER = pagination.Order([rp.c.creation_date, rp.c.arn], descending=True)


@dataclass(frozen=True)
class RecoveryPointFilters:
    """The By* filters of ListRecoveryPointsByBackupVault (None: no filter)."""

    resource_arn: str | None = None
    resource_type: str | None = None
    backup_plan_id: str | None = None
    created_before: datetime | None = None
    created_after: datetime | None = None
    parent_recovery_point_arn: str | None = None

    def apply(self, stmt: sa.Select[Any]) -> sa.Select[Any]:
        equal = {
            rp.c.resource_arn: self.resource_arn,
            rp.c.resource_type: self.resource_type,
            rp.c.backup_plan_id: self.backup_plan_id,
            rp.c.parent_recovery_point_arn: self.parent_recovery_point_arn,
        }
        ranges = [(rp.c.creation_date, self.created_after, self.created_before)]
        return pagination.filtered(stmt, equal.items(), ranges)


def create(
    conn: Connection,
    *,
    arn: str,
    account_id: str,
    region: str,
    backup_vault_name: str,
    backup_vault_arn: str,
    resource_arn: str,
    resource_type: str,
    status: str,
    creation_date: datetime,
    **fields: Any,
) -> jobs.RecoveryPoint:
    """Insert a recovery point; raises AlreadyExists for a known ARN."""
    values = dict(
        fields,
        arn=arn,
        account_id=account_id,
        region=region,
        backup_vault_name=backup_vault_name,
        backup_vault_arn=backup_vault_arn,
        resource_arn=resource_arn,
        resource_type=resource_type,
        status=status,
        creation_date=creation_date,
    )
    try:
        with conn.begin_nested():
            conn.execute(rp.insert().values(**values))
    except IntegrityError as exc:
        raise AlreadyExists(kind="recovery point", name=arn) from exc
    vaults.count_recovery_point(conn, backup_vault_arn, +1)
    return get(conn, arn)


def create_many(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Insert many recovery points in one statement (imports, tests), counting them in."""
    if not rows:
        return
    conn.execute(rp.insert(), rows)
    per_vault: dict[str, int] = {}
    for row in rows:
        per_vault[row["backup_vault_arn"]] = per_vault.get(row["backup_vault_arn"], 0) + 1
    for vault_arn, n in per_vault.items():
        vaults.count_recovery_point(conn, vault_arn, n)


_BY_ARN = sa.select(rp).where(rp.c.arn == sa.bindparam("arn"))  # built once: a hot lookup


def find(conn: Connection, arn: str) -> jobs.RecoveryPoint | None:
    row = conn.execute(_BY_ARN, {"arn": arn}).first()
    return jobs.RecoveryPoint.from_row(row._mapping) if row else None


def get(conn: Connection, arn: str, *, vault_arn: str | None = None) -> jobs.RecoveryPoint:
    """DescribeRecoveryPoint's record; with ``vault_arn``, it must be in that vault."""
    row = find(conn, arn)
    if row is None or (vault_arn is not None and row.backup_vault_arn != vault_arn):
        raise NotFound(kind="recovery point", name=arn)
    return row


def list_by_vault(
    conn: Connection,
    *,
    vault_arn: str,
    filters: RecoveryPointFilters | None = None,
    limit: int | None = None,
    token: str | None = None,
) -> pagination.RecordPage[jobs.RecoveryPoint]:
    """ListRecoveryPointsByBackupVault, newest first."""
    stmt = (filters or RecoveryPointFilters()).apply(
        sa.select(rp).where(rp.c.backup_vault_arn == vault_arn)
    )
    page = pagination.paginate(
        conn, stmt, kind="rp-by-vault", order=_ORDER, limit=limit, token=token
    )
    return page.load(jobs.RecoveryPoint.from_row)


def list_by_resource(
    conn: Connection,
    *,
    resource_arn: str,
    account_id: str | None = None,
    limit: int | None = None,
    token: str | None = None,
) -> pagination.RecordPage[jobs.RecoveryPoint]:
    """ListRecoveryPointsByResource, newest first (optionally one account's vaults)."""
    stmt = sa.select(rp).where(rp.c.resource_arn == resource_arn)
    if account_id is not None:
        stmt = stmt.where(rp.c.account_id == account_id)
    page = pagination.paginate(
        conn, stmt, kind="rp-by-resource", order=_ORDER, limit=limit, token=token
    )
    return page.load(jobs.RecoveryPoint.from_row)


def count_in_vault(conn: Connection, vault_arn: str) -> int:
    stmt = sa.select(sa.func.count()).where(rp.c.backup_vault_arn == vault_arn)
    return int(conn.execute(stmt).scalar_one())


def update(conn: Connection, arn: str, **fields: Any) -> jobs.RecoveryPoint:
    """Set the given columns of one recovery point."""
    if conn.execute(rp.update().where(rp.c.arn == arn).values(**fields)).rowcount == 0:
        raise NotFound(kind="recovery point", name=arn)
    return get(conn, arn)


def update_lifecycle(
    conn: Connection,
    arn: str,
    *,
    lifecycle: dict[str, Any] | None,
    move_to_cold_at: datetime | None,
    delete_at: datetime | None,
) -> jobs.RecoveryPoint:
    """UpdateRecoveryPointLifecycle: the lifecycle and its calculated dates, together."""
    return update(
        conn, arn, lifecycle=lifecycle, move_to_cold_at=move_to_cold_at, delete_at=delete_at
    )


def set_status(
    conn: Connection, arn: str, status: str, message: str | None = None
) -> jobs.RecoveryPoint:
    """DELETING / EXPIRED / ... with an optional status message."""
    return update(conn, arn, status=status, status_message=message)


def set_storage_class(conn: Connection, arn: str, storage_class: str) -> jobs.RecoveryPoint:
    return update(conn, arn, storage_class=storage_class)


def record_restore(conn: Connection, arn: str, when: datetime) -> None:
    conn.execute(rp.update().where(rp.c.arn == arn).values(last_restore_time=when))


def list_due_for_deletion(
    conn: Connection, *, before: datetime, limit: int = 1000
) -> list[jobs.RecoveryPoint]:
    """Recovery points whose delete_at has come and which are not being deleted yet."""
    stmt = (
        sa.select(rp)
        .where(rp.c.delete_at <= before, rp.c.status != "DELETING")
        .order_by(rp.c.delete_at, rp.c.arn)
        .limit(limit)
    )
    return [jobs.RecoveryPoint.from_row(r._mapping) for r in conn.execute(stmt)]


def list_due_for_cold(
    conn: Connection, *, before: datetime, limit: int = 1000
) -> list[jobs.RecoveryPoint]:
    """WARM recovery points whose move_to_cold_at has come."""
    stmt = (
        sa.select(rp)
        .where(rp.c.move_to_cold_at <= before, rp.c.storage_class == "WARM")
        .order_by(rp.c.move_to_cold_at, rp.c.arn)
        .limit(limit)
    )
    return [jobs.RecoveryPoint.from_row(r._mapping) for r in conn.execute(stmt)]


def delete(conn: Connection, arn: str) -> None:
    """Forget a recovery point (after its data is gone) and its tags."""
    row = find(conn, arn)
    if row is None or conn.execute(rp.delete().where(rp.c.arn == arn)).rowcount == 0:
        raise NotFound(kind="recovery point", name=arn)
    vaults.count_recovery_point(conn, row.backup_vault_arn, -1)
    tags.delete_all(conn, arn)
