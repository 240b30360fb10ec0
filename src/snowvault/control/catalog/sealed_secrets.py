"""Named queries over every catalog value sealed under the root key (root-key rotation).

Three columns hold such values: ``access_keys.sealed_secret`` (context: the access key
id), ``kms_key_versions.sealed_material`` (context: key ARN and version) and
``resources.sealed_secrets`` (a resource's plugin secrets as one JSON object; context:
the resource ARN). A rotation reads them all and writes each back re-sealed, inside one
transaction::

    with catalog.db.transaction(engine) as conn:
        for row in catalog.sealed_secrets.access_keys(conn):
            catalog.sealed_secrets.set_access_key(conn, row["access_key_id"], resealed)

A new column sealed under the root key must be added here, or rotation leaves it
unreadable. Must not depend on anything above ``snowvault.core``.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from snowvault.control.catalog.db import Record
from snowvault.control.catalog.tables import access_keys as access_keys_table
from snowvault.control.catalog.tables import kms_key_versions
from snowvault.control.catalog.tables import resources as resources_table


def access_keys(conn: Connection) -> list[Record]:
    """Every access key (any status): ``access_key_id``, ``sealed_secret``."""
    stmt = sa.select(access_keys_table.c.access_key_id, access_keys_table.c.sealed_secret)
    return [dict(r._mapping) for r in conn.execute(stmt.order_by("access_key_id"))]


def set_access_key(conn: Connection, access_key_id: str, sealed_secret: bytes) -> None:
    conn.execute(
        access_keys_table.update()
        .where(access_keys_table.c.access_key_id == access_key_id)
        .values(sealed_secret=sealed_secret)
    )


def kms_versions(conn: Connection) -> list[Record]:
    """Every KMS key material version: ``key_arn``, ``version``, ``sealed_material``."""
    t = kms_key_versions
    stmt = sa.select(t.c.key_arn, t.c.version, t.c.sealed_material)
    return [dict(r._mapping) for r in conn.execute(stmt.order_by(t.c.key_arn, t.c.version))]


def set_kms_version(conn: Connection, key_arn: str, version: int, sealed: bytes) -> None:
    t = kms_key_versions
    conn.execute(
        t.update()
        .where(t.c.key_arn == key_arn, t.c.version == version)
        .values(sealed_material=sealed)
    )


def resource_secrets(conn: Connection) -> list[Record]:
    """Every resource with sealed secrets: ``arn``, ``sealed_secrets``."""
    t = resources_table
    stmt = sa.select(t.c.arn, t.c.sealed_secrets).where(t.c.sealed_secrets.is_not(None))
    return [dict(r._mapping) for r in conn.execute(stmt.order_by(t.c.arn))]


def resource_secrets_of(conn: Connection, arn: str) -> bytes | None:
    """The sealed secrets of resource ``arn`` (None: it has none, or is not registered).
    Only the worker path reads this, right before a plugin runs."""
    t = resources_table
    value = conn.execute(sa.select(t.c.sealed_secrets).where(t.c.arn == arn)).scalar()
    return None if value is None else bytes(value)


def set_resource_secrets(conn: Connection, arn: str, sealed: bytes) -> None:
    t = resources_table
    conn.execute(t.update().where(t.c.arn == arn).values(sealed_secrets=sealed))
