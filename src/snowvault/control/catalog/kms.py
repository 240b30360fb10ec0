"""Named queries for KMS keys, their sealed material versions, aliases and grants.

    with catalog.db.transaction(engine) as conn:
        key = catalog.kms.find_key(conn, key_id="0b1c...")
        versions = catalog.kms.versions(conn, key["arn"])

Rows are plain dicts; the services decide what a state means. Must not depend on
anything above ``snowvault.core``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from snowvault.control.catalog import pagination
from snowvault.control.catalog.db import Record
from snowvault.control.catalog.tables import (
    kms_aliases,
    kms_grants,
    kms_key_versions,
    kms_keys,
    vaults,
)
from snowvault.core.errors import AlreadyExists

DELETED = "Deleted"
_KEY_ORDER = pagination.Order([kms_keys.c.creation_date, kms_keys.c.arn])
_ALIAS_ORDER = pagination.Order([kms_aliases.c.alias_name])
_GRANT_ORDER = pagination.Order(
    [kms_grants.c.creation_date, kms_grants.c.seq, kms_grants.c.grant_id]
)


def insert_key(conn: Connection, **values: Any) -> Record:
    """Insert a key row (all columns given by the service)."""
    conn.execute(kms_keys.insert().values(**values))
    return get_key_by_arn(conn, str(values["arn"]))


def find_key(
    conn: Connection, *, arn: str | None = None, key_id: str | None = None
) -> Record | None:
    """A key by ARN or by key id, deleted ones included (callers check the state)."""
    stmt = sa.select(kms_keys)
    stmt = stmt.where(kms_keys.c.arn == arn) if arn else stmt.where(kms_keys.c.key_id == key_id)
    row = conn.execute(stmt).first()
    return dict(row._mapping) if row else None


def get_key_by_arn(conn: Connection, arn: str) -> Record:
    row = find_key(conn, arn=arn)
    if row is None:
        raise LookupError(arn)
    return row


def update_key(conn: Connection, arn: str, **fields: Any) -> Record:
    conn.execute(kms_keys.update().where(kms_keys.c.arn == arn).values(**fields))
    return get_key_by_arn(conn, arn)


def list_keys(
    conn: Connection, *, account_id: str, region: str, limit: int | None, token: str | None
) -> pagination.Page:
    """ListKeys: the account's keys in the region (not deleted), oldest first."""
    stmt = sa.select(kms_keys).where(
        kms_keys.c.account_id == account_id,
        kms_keys.c.region == region,
        kms_keys.c.key_state != DELETED,
    )
    return pagination.paginate(
        conn, stmt, kind="kms-keys", order=_KEY_ORDER, limit=limit, token=token
    )


def keys_due_for_deletion(conn: Connection, now: datetime) -> list[Record]:
    stmt = sa.select(kms_keys).where(
        kms_keys.c.key_state == "PendingDeletion", kms_keys.c.deletion_date <= now
    )
    return [dict(r._mapping) for r in conn.execute(stmt.order_by(kms_keys.c.arn))]


def keys_due_for_rotation(conn: Connection, now: datetime) -> list[Record]:
    stmt = sa.select(kms_keys).where(
        kms_keys.c.key_state == "Enabled",
        kms_keys.c.rotation_enabled.is_(True),
        kms_keys.c.next_rotation_date <= now,
    )
    return [dict(r._mapping) for r in conn.execute(stmt.order_by(kms_keys.c.arn))]


# --- versions (sealed key material) --------------------------------------------------


def add_version(
    conn: Connection, key_arn: str, version: int, sealed: bytes, rotation_type: str, now: datetime
) -> None:
    conn.execute(
        kms_key_versions.insert().values(
            key_arn=key_arn,
            version=version,
            sealed_material=sealed,
            rotation_type=rotation_type,
            created_at=now,
        )
    )


def get_version(conn: Connection, key_arn: str, version: int) -> Record | None:
    row = conn.execute(
        sa.select(kms_key_versions).where(
            kms_key_versions.c.key_arn == key_arn, kms_key_versions.c.version == version
        )
    ).first()
    return dict(row._mapping) if row else None


def versions(conn: Connection, key_arn: str) -> list[Record]:
    """Every material version of a key, oldest first."""
    stmt = sa.select(kms_key_versions).where(kms_key_versions.c.key_arn == key_arn)
    return [dict(r._mapping) for r in conn.execute(stmt.order_by(kms_key_versions.c.version))]


def destroy_versions(conn: Connection, key_arn: str) -> int:
    """Delete every sealed material version of a key; returns how many were removed."""
    result = conn.execute(kms_key_versions.delete().where(kms_key_versions.c.key_arn == key_arn))
    return int(result.rowcount or 0)


# --- aliases -------------------------------------------------------------------------


def create_alias(
    conn: Connection, *, account_id: str, region: str, alias_name: str, key_arn: str, now: datetime
) -> None:
    """Raises AlreadyExists when the alias name is taken in the account+region."""
    values = dict(
        account_id=account_id,
        region=region,
        alias_name=alias_name,
        target_key_arn=key_arn,
        creation_date=now,
        last_updated_date=now,
    )
    try:
        with conn.begin_nested():
            conn.execute(kms_aliases.insert().values(**values))
    except IntegrityError as exc:
        raise AlreadyExists(kind="alias", name=alias_name) from exc


def find_alias(conn: Connection, *, account_id: str, region: str, alias_name: str) -> Record | None:
    row = conn.execute(
        sa.select(kms_aliases).where(
            kms_aliases.c.account_id == account_id,
            kms_aliases.c.region == region,
            kms_aliases.c.alias_name == alias_name,
        )
    ).first()
    return dict(row._mapping) if row else None


def delete_alias(conn: Connection, *, account_id: str, region: str, alias_name: str) -> int:
    result = conn.execute(
        kms_aliases.delete().where(
            kms_aliases.c.account_id == account_id,
            kms_aliases.c.region == region,
            kms_aliases.c.alias_name == alias_name,
        )
    )
    return int(result.rowcount or 0)


def delete_aliases_of(conn: Connection, key_arn: str) -> None:
    conn.execute(kms_aliases.delete().where(kms_aliases.c.target_key_arn == key_arn))


def list_aliases(
    conn: Connection,
    *,
    account_id: str,
    region: str,
    key_arn: str | None,
    limit: int | None,
    token: str | None,
) -> pagination.Page:
    """ListAliases: by name, optionally only those pointing at one key."""
    stmt = sa.select(kms_aliases).where(
        kms_aliases.c.account_id == account_id, kms_aliases.c.region == region
    )
    if key_arn:
        stmt = stmt.where(kms_aliases.c.target_key_arn == key_arn)
    return pagination.paginate(
        conn, stmt, kind="kms-aliases", order=_ALIAS_ORDER, limit=limit, token=token
    )


def update_alias(
    conn: Connection,
    *,
    account_id: str,
    region: str,
    alias_name: str,
    key_arn: str,
    now: datetime,
) -> int:
    """Point an existing alias at another key; returns how many rows changed (0 or 1)."""
    result = conn.execute(
        kms_aliases.update()
        .where(
            kms_aliases.c.account_id == account_id,
            kms_aliases.c.region == region,
            kms_aliases.c.alias_name == alias_name,
        )
        .values(target_key_arn=key_arn, last_updated_date=now)
    )
    return int(result.rowcount or 0)


# --- grants --------------------------------------------------------------------------


def insert_grant(conn: Connection, **values: Any) -> Record:
    """Insert a grant; ``seq`` numbers the key's grants in creation order."""
    last = sa.select(sa.func.coalesce(sa.func.max(kms_grants.c.seq), 0)).where(
        kms_grants.c.key_arn == values["key_arn"]
    )
    seq = int(conn.execute(last).scalar_one()) + 1
    conn.execute(kms_grants.insert().values(**values, seq=seq))
    found = find_grant(conn, grant_id=str(values["grant_id"]))
    assert found is not None
    return found


def find_grant(
    conn: Connection, *, grant_id: str | None = None, grant_token: str | None = None
) -> Record | None:
    """A grant by id or by token."""
    stmt = sa.select(kms_grants)
    if grant_id is not None:
        stmt = stmt.where(kms_grants.c.grant_id == grant_id)
    else:
        stmt = stmt.where(kms_grants.c.grant_token == grant_token)
    row = conn.execute(stmt).first()
    return dict(row._mapping) if row else None


def find_grant_by_name(conn: Connection, key_arn: str, name: str) -> Record | None:
    row = conn.execute(
        sa.select(kms_grants).where(kms_grants.c.key_arn == key_arn, kms_grants.c.name == name)
    ).first()
    return dict(row._mapping) if row else None


def delete_grant(conn: Connection, grant_id: str) -> int:
    result = conn.execute(kms_grants.delete().where(kms_grants.c.grant_id == grant_id))
    return int(result.rowcount or 0)


def delete_grants_of(conn: Connection, key_arn: str) -> None:
    conn.execute(kms_grants.delete().where(kms_grants.c.key_arn == key_arn))


def grants_of(conn: Connection, key_arn: str) -> list[Record]:
    """Every grant of a key, oldest first (for deciding a request; no pagination)."""
    stmt = sa.select(kms_grants).where(kms_grants.c.key_arn == key_arn)
    return [dict(r._mapping) for r in conn.execute(stmt.order_by(kms_grants.c.seq))]


def list_grants(
    conn: Connection,
    *,
    key_arn: str | None = None,
    retiring_principal: str | None = None,
    grant_id: str | None = None,
    grantee_principal: str | None = None,
    key_prefix: str | None = None,
    limit: int | None,
    token: str | None,
) -> pagination.Page:
    """ListGrants (one key) or ListRetirableGrants (one retiring principal), oldest first."""
    stmt = sa.select(kms_grants)
    if key_arn is not None:
        stmt = stmt.where(kms_grants.c.key_arn == key_arn)
    if retiring_principal is not None:
        stmt = stmt.where(kms_grants.c.retiring_principal == retiring_principal)
    if grant_id is not None:
        stmt = stmt.where(kms_grants.c.grant_id == grant_id)
    if grantee_principal is not None:
        stmt = stmt.where(kms_grants.c.grantee_principal == grantee_principal)
    if key_prefix is not None:
        stmt = stmt.where(kms_grants.c.key_arn.startswith(key_prefix, autoescape=True))
    return pagination.paginate(
        conn, stmt, kind="kms-grants", order=_GRANT_ORDER, limit=limit, token=token
    )


def vaults_using_key(conn: Connection, key_arn: str) -> list[Record]:
    """Vaults whose repository secret is wrapped by ``key_arn`` (for crypto-shredding)."""
    stmt = sa.select(vaults).where(vaults.c.encryption_key_arn == key_arn)
    return [dict(r._mapping) for r in conn.execute(stmt.order_by(vaults.c.arn))]
