"""Legal holds and Vault Lock creation times: the named queries of the access issue.

Holds are listed per account and region, newest first, keyset-paginated. The selection
is stored as JSON exactly as the service gives it; coverage is the model's business.

    >>> # holds = legal_holds.list_restraining(conn, account_id=acct, region="us-east-1")

Must not depend on anything above ``snowvault.core``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from snowvault.control.catalog import pagination
from snowvault.control.catalog.db import Record
from snowvault.control.catalog.tables import legal_holds as lh
from snowvault.control.catalog.tables import vault_locks
from snowvault.core.errors import NotFound

_ORDER = pagination.Order([lh.c.creation_date, lh.c.legal_hold_id], descending=True)
RESTRAINING = ("CREATING", "ACTIVE", "CANCELING")


def create(conn: Connection, **values: Any) -> Record:
    conn.execute(lh.insert().values(**values))
    return get(conn, values["legal_hold_id"], account_id=values["account_id"])


def get(conn: Connection, legal_hold_id: str, *, account_id: str) -> Record:
    """The hold; raises NotFound (also for another account's hold)."""
    row = conn.execute(
        sa.select(lh).where(lh.c.legal_hold_id == legal_hold_id, lh.c.account_id == account_id)
    ).first()
    if row is None:
        raise NotFound(kind="legal hold", name=legal_hold_id)
    return dict(row._mapping)


def find_by_token(conn: Connection, *, account_id: str, token: str) -> Record | None:
    row = conn.execute(
        sa.select(lh).where(lh.c.account_id == account_id, lh.c.idempotency_token == token)
    ).first()
    return dict(row._mapping) if row else None


def list_holds(
    conn: Connection,
    *,
    account_id: str,
    region: str,
    limit: int | None = None,
    token: str | None = None,
) -> pagination.Page:
    stmt = sa.select(lh).where(lh.c.account_id == account_id, lh.c.region == region)
    return pagination.paginate(
        conn, stmt, kind="legal-holds", order=_ORDER, limit=limit, token=token
    )


def list_restraining(conn: Connection, *, account_id: str, region: str) -> list[Record]:
    """Holds that still restrain recovery points (status not CANCELED)."""
    stmt = sa.select(lh).where(
        lh.c.account_id == account_id, lh.c.region == region, lh.c.status.in_(RESTRAINING)
    )
    return [dict(r._mapping) for r in conn.execute(stmt.order_by(lh.c.legal_hold_id))]


def update(conn: Connection, legal_hold_id: str, **fields: Any) -> None:
    conn.execute(lh.update().where(lh.c.legal_hold_id == legal_hold_id).values(**fields))


def purge_records(conn: Connection, *, before: datetime) -> int:
    """Delete canceled holds whose retain_record_until has come."""
    stmt = lh.delete().where(lh.c.status == "CANCELED", lh.c.retain_record_until <= before)
    return int(conn.execute(stmt).rowcount)


# --- Vault Lock creation times ---------------------------------------------------------


def lock_created_at(conn: Connection, vault_arn: str) -> datetime | None:
    """When the vault's current lock was put; None when the vault has no lock."""
    return conn.execute(
        sa.select(vault_locks.c.created_at).where(vault_locks.c.vault_arn == vault_arn)
    ).scalar_one_or_none()


def put_lock(conn: Connection, vault_arn: str, created_at: datetime) -> None:
    conn.execute(vault_locks.delete().where(vault_locks.c.vault_arn == vault_arn))
    conn.execute(vault_locks.insert().values(vault_arn=vault_arn, created_at=created_at))


def delete_lock(conn: Connection, vault_arn: str) -> None:
    conn.execute(vault_locks.delete().where(vault_locks.c.vault_arn == vault_arn))
