"""Tags on any ARN (vaults, recovery points, resources, later plans): key/value pairs.

    >>> # tags.tag(conn, arn, {"env": "prod"}); tags.list_for(conn, arn) -> {"env": "prod"}

Must not depend on anything above ``snowvault.core``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from snowvault.control.catalog.tables import tags


def tag(conn: Connection, resource_arn: str, values: Mapping[str, str]) -> None:
    """Set tags on ``resource_arn``; an existing key gets the new value."""
    if not values:
        return
    untag(conn, resource_arn, values.keys())
    conn.execute(
        tags.insert(),
        [{"resource_arn": resource_arn, "key": k, "value": v} for k, v in values.items()],
    )


def untag(conn: Connection, resource_arn: str, keys: Iterable[str]) -> None:
    """Remove the named keys from ``resource_arn`` (missing keys are ignored)."""
    keys = list(keys)
    if keys:
        conn.execute(tags.delete().where(tags.c.resource_arn == resource_arn, tags.c.key.in_(keys)))


def list_for(conn: Connection, resource_arn: str) -> dict[str, str]:
    """All tags of ``resource_arn`` as a dict, sorted by key."""
    rows = conn.execute(
        sa.select(tags.c.key, tags.c.value)
        .where(tags.c.resource_arn == resource_arn)
        .order_by(tags.c.key)
    )
    return {r.key: r.value for r in rows}


def delete_all(conn: Connection, resource_arn: str) -> None:
    """Forget every tag of ``resource_arn`` (the thing itself was deleted)."""
    conn.execute(tags.delete().where(tags.c.resource_arn == resource_arn))


def arns_with_tag(conn: Connection, key: str, value: str, *, prefix: str = "") -> list[str]:
    """ARNs carrying ``key=value``, optionally only those starting with ``prefix``."""
    stmt = sa.select(tags.c.resource_arn).where(tags.c.key == key, tags.c.value == value)
    if prefix:
        stmt = stmt.where(tags.c.resource_arn.startswith(prefix, autoescape=True))
    return [r.resource_arn for r in conn.execute(stmt.order_by(tags.c.resource_arn))]
