"""Backup vaults: create, describe, list, delete, and their policy, notifications and lock.

A vault is unique per (account, region, name). ``number_of_recovery_points`` is a
stored column that ``recovery_points.create`` and ``recovery_points.delete`` (the only
code that inserts or deletes recovery points) change in the same transaction as the row,
so it cannot drift; counting the rows instead walked the vault's whole index on every
ListBackupVaults and DescribeBackupVault.

Must not depend on anything above ``snowvault.core``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from snowvault.control.catalog import pagination, tags
from snowvault.control.catalog.db import Record
from snowvault.control.catalog.tables import vaults
from snowvault.core.errors import AlreadyExists, Conflict, NotFound

_ORDER = pagination.Order([vaults.c.name])
_LOCK_FIELDS = ("min_retention_days", "max_retention_days", "changeable_for_days", "lock_date")


def _select() -> sa.Select[Any]:
    return sa.select(vaults)


def create(
    conn: Connection,
    *,
    arn: str,
    account_id: str,
    region: str,
    name: str,
    creation_date: datetime,
    storage_url: str,
    **fields: Any,
) -> Record:
    """Insert a vault; raises AlreadyExists if the name is taken in that account+region."""
    values = dict(
        fields,
        arn=arn,
        account_id=account_id,
        region=region,
        name=name,
        creation_date=creation_date,
        storage_url=storage_url,
    )
    try:
        with conn.begin_nested():
            conn.execute(vaults.insert().values(**values))
    except IntegrityError as exc:
        raise AlreadyExists(kind="backup vault", name=name) from exc
    return get(conn, account_id=account_id, region=region, name=name)


# Built once with bind parameters: every API request looks a vault up.
_BY_NAME = _select().where(
    vaults.c.account_id == sa.bindparam("account_id"),
    vaults.c.region == sa.bindparam("region"),
    vaults.c.name == sa.bindparam("name"),
)
_BY_ARN = _select().where(vaults.c.arn == sa.bindparam("arn"))


def find(conn: Connection, *, account_id: str, region: str, name: str) -> Record | None:
    params = {"account_id": account_id, "region": region, "name": name}
    row = conn.execute(_BY_NAME, params).first()
    return dict(row._mapping) if row else None


def get(conn: Connection, *, account_id: str, region: str, name: str) -> Record:
    """The vault row; raises NotFound."""
    row = find(conn, account_id=account_id, region=region, name=name)
    if row is None:
        raise NotFound(kind="backup vault", name=name)
    return row


def find_by_arn(conn: Connection, arn: str) -> Record | None:
    row = conn.execute(_BY_ARN, {"arn": arn}).first()
    return dict(row._mapping) if row else None


def get_by_arn(conn: Connection, arn: str) -> Record:
    row = conn.execute(_BY_ARN, {"arn": arn}).first()
    if row is None:
        raise NotFound(kind="backup vault", name=arn)
    return dict(row._mapping)


def list_vaults(
    conn: Connection,
    *,
    account_id: str,
    region: str,
    vault_type: str | None = None,
    limit: int | None = None,
    token: str | None = None,
) -> pagination.Page:
    """ListBackupVaults: vaults of the account in the region, by name."""
    stmt = _select().where(vaults.c.account_id == account_id, vaults.c.region == region)
    if vault_type:
        stmt = stmt.where(vaults.c.vault_type == vault_type)
    return pagination.paginate(conn, stmt, kind="vaults", order=_ORDER, limit=limit, token=token)


def update(conn: Connection, arn: str, **fields: Any) -> Record:
    """Set the given columns (access_policy, notifications, encryption fields...)."""
    result = conn.execute(vaults.update().where(vaults.c.arn == arn).values(**fields))
    if result.rowcount == 0:
        raise NotFound(kind="backup vault", name=arn)
    return get_by_arn(conn, arn)


def set_lock(
    conn: Connection,
    arn: str,
    *,
    min_retention_days: int | None,
    max_retention_days: int | None,
    changeable_for_days: int | None,
    lock_date: datetime | None,
) -> Record:
    """PutBackupVaultLockConfiguration: store the lock; ``locked`` follows ``lock_date``.

    The decision whether the lock may still change is the model's, not the catalog's.
    """
    return update(
        conn,
        arn,
        min_retention_days=min_retention_days,
        max_retention_days=max_retention_days,
        changeable_for_days=changeable_for_days,
        lock_date=lock_date,
        locked=lock_date is not None,
    )


def clear_lock(conn: Connection, arn: str) -> Record:
    """DeleteBackupVaultLockConfiguration."""
    return update(conn, arn, locked=False, **dict.fromkeys(_LOCK_FIELDS))


def set_locked(conn: Connection, arn: str, locked: bool) -> Record:
    """Flip ``locked`` (the sweeper sets it when a lock's grace time ends)."""
    return update(conn, arn, locked=locked)


def list_lock_pending(conn: Connection, *, before: datetime) -> list[Record]:
    """Vaults whose lock_date has passed but which are not yet flagged locked."""
    stmt = _select().where(vaults.c.locked.is_(False), vaults.c.lock_date <= before)
    return [dict(r._mapping) for r in conn.execute(stmt.order_by(vaults.c.arn))]


def count_recovery_point(conn: Connection, arn: str, delta: int) -> None:
    """Add ``delta`` to the vault's stored recovery-point count (recovery_points only)."""
    column = vaults.c.number_of_recovery_points
    conn.execute(vaults.update().where(vaults.c.arn == arn).values({column: column + delta}))


def lock(conn: Connection, arn: str, *, shared: bool = False) -> Record:
    """The vault row, locked until the transaction ends; raises NotFound.

    DeleteBackupVault takes it exclusively (PostgreSQL ``FOR UPDATE``) before it looks for
    jobs using the vault; creating a job takes it shared (``FOR SHARE``), so a job cannot
    be queued into a vault whose delete has checked for jobs but not yet committed, and a
    delete waits for a job insert in flight. SQLite needs no row lock: every write
    transaction there is ``BEGIN IMMEDIATE`` and so runs alone.
    """
    stmt = _BY_ARN.with_for_update(read=shared)
    row = conn.execute(stmt, {"arn": arn}).first()
    if row is None:
        raise NotFound(kind="backup vault", name=arn)
    return dict(row._mapping)


NOT_EMPTY = "Backup vault cannot be deleted because it contains recovery points"


def delete(conn: Connection, arn: str) -> None:
    """DeleteBackupVault: only an empty vault (AWS's message otherwise); its tags go with
    it. Callers check for jobs using the vault in the same transaction (see ``lock``)."""
    if lock(conn, arn)["number_of_recovery_points"]:
        raise Conflict(detail=NOT_EMPTY)
    conn.execute(vaults.delete().where(vaults.c.arn == arn))
    tags.delete_all(conn, arn)
