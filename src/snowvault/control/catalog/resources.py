"""The protected-resource inventory: what can be backed up, and what it last got.

A resource is registered (or discovered) with a type, a source, its plugin's
``properties`` and an optional worker label; backups and restores record their latest
outcome on it, which is what ListProtectedResources and DescribeProtectedResource answer.

Rows never carry ``sealed_secrets``: the sealed value is read only through
:func:`snowvault.control.catalog.sealed_secrets.resource_secrets_of` (the worker path),
so no listing or description can leak it. ``properties`` comes back as a dict.

Must not depend on anything above ``snowvault.core``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from snowvault.control.catalog import pagination, tags
from snowvault.control.catalog.db import Record
from snowvault.control.catalog.tables import recovery_points, resources
from snowvault.core.errors import AlreadyExists, NotFound

_ORDER = pagination.Order([resources.c.arn])
_PUBLIC = [c for c in resources.c if c.name != "sealed_secrets"]


def _row(row: Mapping[str, Any]) -> Record:
    """A row as the services see it: ``properties`` decoded (``{}`` when none)."""
    out = dict(row)
    text = out.get("properties")
    out["properties"] = json.loads(text) if text else {}
    return out


def register(
    conn: Connection,
    *,
    arn: str,
    account_id: str,
    region: str,
    resource_type: str,
    created_at: datetime,
    name: str | None = None,
    source: str | None = None,
    worker_label: str | None = None,
    properties: Mapping[str, str] | None = None,
    sealed_secrets: bytes | None = None,
) -> Record:
    """Add a resource to the inventory; raises AlreadyExists for a known ARN.
    ``sealed_secrets`` is already sealed (the services seal; the catalog never sees
    plaintext secrets)."""
    values = {
        "properties": json.dumps(dict(properties), sort_keys=True) if properties else None,
        "sealed_secrets": sealed_secrets,
        "arn": arn,
        "account_id": account_id,
        "region": region,
        "resource_type": resource_type,
        "name": name,
        "source": source,
        "worker_label": worker_label,
        "created_at": created_at,
    }
    try:
        with conn.begin_nested():
            conn.execute(resources.insert().values(**values))
    except IntegrityError as exc:
        raise AlreadyExists(kind="resource", name=arn) from exc
    return get(conn, arn)


def find(conn: Connection, arn: str) -> Record | None:
    row = conn.execute(sa.select(*_PUBLIC).where(resources.c.arn == arn)).first()
    return _row(dict(row._mapping)) if row else None


def get(conn: Connection, arn: str) -> Record:
    """DescribeProtectedResource's row; raises NotFound."""
    row = find(conn, arn)
    if row is None:
        raise NotFound(kind="resource", name=arn)
    return row


def update(conn: Connection, arn: str, **fields: Any) -> Record:
    """Change name, source, worker label or type of a registered resource."""
    if conn.execute(resources.update().where(resources.c.arn == arn).values(**fields)).rowcount:
        return get(conn, arn)
    raise NotFound(kind="resource", name=arn)


def list_resources(
    conn: Connection,
    *,
    account_id: str,
    region: str,
    protected_only: bool = False,
    resource_type: str | None = None,
    limit: int | None = None,
    token: str | None = None,
) -> pagination.Page:
    """The inventory; ``protected_only`` is ListProtectedResources (backed up at least once)."""
    stmt = sa.select(*_PUBLIC).where(
        resources.c.account_id == account_id, resources.c.region == region
    )
    if protected_only:
        stmt = stmt.where(resources.c.last_backup_time.is_not(None))
    if resource_type:
        stmt = stmt.where(resources.c.resource_type == resource_type)
    page = pagination.paginate(conn, stmt, kind="resources", order=_ORDER, limit=limit, token=token)
    return pagination.Page([_row(r) for r in page.items], page.next_token)


def list_by_vault(
    conn: Connection, *, vault_arn: str, limit: int | None = None, token: str | None = None
) -> pagination.Page:
    """ListProtectedResourcesByBackupVault: resources with a recovery point in the vault."""
    in_vault = sa.exists().where(
        recovery_points.c.resource_arn == resources.c.arn,
        recovery_points.c.backup_vault_arn == vault_arn,
    )
    stmt = sa.select(*_PUBLIC).where(in_vault)
    page = pagination.paginate(
        conn, stmt, kind="resources-by-vault", order=_ORDER, limit=limit, token=token
    )
    return pagination.Page([_row(r) for r in page.items], page.next_token)


def record_backup(
    conn: Connection, arn: str, *, when: datetime, vault_arn: str, recovery_point_arn: str
) -> None:
    """Note a completed backup (only if newer than the one recorded)."""
    newer = sa.or_(resources.c.last_backup_time.is_(None), resources.c.last_backup_time <= when)
    conn.execute(
        resources.update()
        .where(resources.c.arn == arn, newer)
        .values(
            last_backup_time=when,
            last_backup_vault_arn=vault_arn,
            last_recovery_point_arn=recovery_point_arn,
        )
    )


def record_restore(
    conn: Connection,
    arn: str,
    *,
    job_creation_date: datetime,
    execution_time_minutes: int,
    recovery_point_creation_date: datetime | None,
) -> None:
    """Note a completed restore of this resource (the Latest* fields)."""
    conn.execute(
        resources.update()
        .where(resources.c.arn == arn)
        .values(
            latest_restore_job_creation_date=job_creation_date,
            latest_restore_execution_time_minutes=execution_time_minutes,
            latest_restore_recovery_point_creation_date=recovery_point_creation_date,
        )
    )


def delete(conn: Connection, arn: str) -> None:
    """Remove a resource from the inventory, with its tags; its recovery points stay."""
    if conn.execute(resources.delete().where(resources.c.arn == arn)).rowcount == 0:
        raise NotFound(kind="resource", name=arn)
    tags.delete_all(conn, arn)
