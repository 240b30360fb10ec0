"""Accounts (tenants), their principals, identity policies and access keys.

Access key secrets are stored only as an opaque sealed blob: sealing and opening are
the key service's job; the catalog never sees a plaintext secret.

Must not depend on anything above ``snowvault.core``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from snowvault.control.catalog.db import Record
from snowvault.control.catalog.tables import access_keys, accounts, principals, user_policies
from snowvault.core.arn import ACCOUNT_RE
from snowvault.core.errors import AlreadyExists, InvalidInput, NotFound


def _insert(
    conn: Connection, table: sa.Table, values: dict[str, Any], kind: str, name: str
) -> None:
    try:
        with conn.begin_nested():
            conn.execute(table.insert().values(**values))
    except IntegrityError as exc:
        raise AlreadyExists(kind=kind, name=name) from exc


def _one(conn: Connection, stmt: sa.Select[Any], kind: str, name: str) -> Record:
    row = conn.execute(stmt).first()
    if row is None:
        raise NotFound(kind=kind, name=name)
    return dict(row._mapping)


# --- accounts ------------------------------------------------------------------------


def create_account(
    conn: Connection, *, account_id: str, name: str, created_at: datetime, email: str | None = None
) -> Record:
    if not ACCOUNT_RE.match(account_id):
        raise InvalidInput(detail=f"account id must be 12 digits: {account_id!r}")
    values = {"account_id": account_id, "name": name, "email": email, "created_at": created_at}
    _insert(conn, accounts, values, "account", account_id)
    return values


def get_account(conn: Connection, account_id: str) -> Record:
    stmt = sa.select(accounts).where(accounts.c.account_id == account_id)
    return _one(conn, stmt, "account", account_id)


def list_accounts(conn: Connection) -> list[Record]:
    rows = conn.execute(sa.select(accounts).order_by(accounts.c.account_id))
    return [dict(r._mapping) for r in rows]


# --- principals and their policies ---------------------------------------------------


def create_principal(
    conn: Connection,
    *,
    arn: str,
    account_id: str,
    name: str,
    created_at: datetime,
    is_root: bool = False,
    path: str = "/",
) -> Record:
    values = {
        "arn": arn,
        "account_id": account_id,
        "name": name,
        "path": path,
        "is_root": is_root,
        "created_at": created_at,
    }
    _insert(conn, principals, values, "user", name)
    return values


# Hot lookups (every API request) are built once with bind parameters: building and
# cache-keying a fresh statement cost ~4x the query itself on SQLite.
_PRINCIPAL_BY_ARN = sa.select(principals).where(principals.c.arn == sa.bindparam("arn"))


def get_principal(conn: Connection, arn: str) -> Record:
    row = conn.execute(_PRINCIPAL_BY_ARN, {"arn": arn}).first()
    if row is None:
        raise NotFound(kind="user", name=arn)
    return dict(row._mapping)


def lock_principal(conn: Connection, arn: str) -> Record:
    """The principal, its row locked until the transaction ends (PostgreSQL ``FOR
    UPDATE``; SQLite serializes writers anyway): a check of its access keys and the
    insert after it are not interleaved with another's (the per-user key quota)."""
    row = conn.execute(_PRINCIPAL_BY_ARN.with_for_update(), {"arn": arn}).first()
    if row is None:
        raise NotFound(kind="user", name=arn)
    return dict(row._mapping)


def find_principal(conn: Connection, *, account_id: str, name: str) -> Record | None:
    row = conn.execute(
        sa.select(principals).where(
            principals.c.account_id == account_id, principals.c.name == name
        )
    ).first()
    return dict(row._mapping) if row else None


def list_principals(conn: Connection, account_id: str) -> list[Record]:
    stmt = sa.select(principals).where(principals.c.account_id == account_id)
    return [dict(r._mapping) for r in conn.execute(stmt.order_by(principals.c.name))]


def delete_principal(conn: Connection, arn: str) -> None:
    """Delete a user with its policies and access keys."""
    conn.execute(user_policies.delete().where(user_policies.c.principal_arn == arn))
    conn.execute(access_keys.delete().where(access_keys.c.principal_arn == arn))
    if conn.execute(principals.delete().where(principals.c.arn == arn)).rowcount == 0:
        raise NotFound(kind="user", name=arn)


def put_user_policy(
    conn: Connection,
    *,
    principal_arn: str,
    policy_name: str,
    document: dict[str, Any],
    now: datetime,
) -> None:
    """Create or replace the named identity policy of a principal."""
    delete_user_policy(conn, principal_arn=principal_arn, policy_name=policy_name, missing_ok=True)
    conn.execute(
        user_policies.insert().values(
            principal_arn=principal_arn, policy_name=policy_name, document=document, updated_at=now
        )
    )


def get_user_policies(conn: Connection, principal_arn: str) -> dict[str, dict[str, Any]]:
    """Policy name -> policy document, for one principal."""
    rows = conn.execute(_USER_POLICIES, {"principal_arn": principal_arn})
    return {r.policy_name: r.document for r in rows}


_USER_POLICIES = (
    sa.select(user_policies.c.policy_name, user_policies.c.document)
    .where(user_policies.c.principal_arn == sa.bindparam("principal_arn"))
    .order_by(user_policies.c.policy_name)
)


def delete_user_policy(
    conn: Connection, *, principal_arn: str, policy_name: str, missing_ok: bool = False
) -> None:
    result = conn.execute(
        user_policies.delete().where(
            user_policies.c.principal_arn == principal_arn,
            user_policies.c.policy_name == policy_name,
        )
    )
    if result.rowcount == 0 and not missing_ok:
        raise NotFound(kind="user policy", name=policy_name)


# --- access keys ---------------------------------------------------------------------


def create_access_key(
    conn: Connection,
    *,
    access_key_id: str,
    principal_arn: str,
    sealed_secret: bytes,
    created_at: datetime,
    status: str = "Active",
) -> Record:
    values = {
        "access_key_id": access_key_id,
        "principal_arn": principal_arn,
        "sealed_secret": sealed_secret,
        "status": status,
        "created_at": created_at,
        "last_used_at": None,
    }
    _insert(conn, access_keys, values, "access key", access_key_id)
    return values


def get_access_key(conn: Connection, access_key_id: str) -> Record:
    """The key row joined with its principal's account and root flag (for SigV4)."""
    row = conn.execute(_ACCESS_KEY, {"access_key_id": access_key_id}).first()
    if row is None:
        raise NotFound(kind="access key", name=access_key_id)
    return dict(row._mapping)


_ACCESS_KEY = (
    sa.select(access_keys, principals.c.account_id, principals.c.is_root, principals.c.name)
    .join(principals, principals.c.arn == access_keys.c.principal_arn)
    .where(access_keys.c.access_key_id == sa.bindparam("access_key_id"))
)


def list_access_keys(conn: Connection, principal_arn: str) -> list[Record]:
    stmt = sa.select(access_keys).where(access_keys.c.principal_arn == principal_arn)
    return [dict(r._mapping) for r in conn.execute(stmt.order_by(access_keys.c.created_at))]


def set_access_key_status(conn: Connection, access_key_id: str, status: str) -> None:
    if status not in ("Active", "Inactive"):
        raise InvalidInput(detail=f"access key status must be Active or Inactive: {status!r}")
    result = conn.execute(
        access_keys.update()
        .where(access_keys.c.access_key_id == access_key_id)
        .values(status=status)
    )
    if result.rowcount == 0:
        raise NotFound(kind="access key", name=access_key_id)


def touch_access_key(conn: Connection, access_key_id: str, now: datetime) -> None:
    """Record that the key signed a request."""
    conn.execute(
        access_keys.update()
        .where(access_keys.c.access_key_id == access_key_id)
        .values(last_used_at=now)
    )


def delete_access_key(conn: Connection, access_key_id: str) -> None:
    result = conn.execute(access_keys.delete().where(access_keys.c.access_key_id == access_key_id))
    if result.rowcount == 0:
        raise NotFound(kind="access key", name=access_key_id)
