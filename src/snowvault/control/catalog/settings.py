"""Server-wide settings (key -> JSON value) and per-account, per-region settings.

Server settings hold things like the home region and the list of account ids; region
settings hold AWS's ResourceTypeOptInPreference and ResourceTypeManagementPreference.

Must not depend on anything above ``snowvault.core``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from snowvault.control.catalog.db import Record
from snowvault.control.catalog.tables import region_settings, settings


def get(conn: Connection, key: str, default: Any = None) -> Any:
    row = conn.execute(sa.select(settings.c.value).where(settings.c.key == key)).first()
    return default if row is None else row.value


def put(conn: Connection, key: str, value: Any) -> None:
    """Create or replace one server setting."""
    conn.execute(settings.delete().where(settings.c.key == key))
    conn.execute(settings.insert().values(key=key, value=value))


def delete(conn: Connection, key: str) -> None:
    """Remove one server setting (missing keys are ignored)."""
    conn.execute(settings.delete().where(settings.c.key == key))


def all_settings(conn: Connection) -> dict[str, Any]:
    rows = conn.execute(sa.select(settings).order_by(settings.c.key))
    return {r.key: r.value for r in rows}


def get_region(conn: Connection, *, account_id: str, region: str) -> Record | None:
    row = conn.execute(
        sa.select(region_settings).where(
            region_settings.c.account_id == account_id, region_settings.c.region == region
        )
    ).first()
    return dict(row._mapping) if row else None


def put_region(
    conn: Connection,
    *,
    account_id: str,
    region: str,
    now: datetime,
    opt_in: dict[str, bool] | None = None,
    management: dict[str, bool] | None = None,
) -> Record:
    """UpdateRegionSettings: merge the given preferences into the stored ones."""
    current = get_region(conn, account_id=account_id, region=region) or {}
    merged_opt_in = {**(current.get("resource_type_opt_in_preference") or {}), **(opt_in or {})}
    merged_mgmt = {
        **(current.get("resource_type_management_preference") or {}),
        **(management or {}),
    }
    conn.execute(
        region_settings.delete().where(
            region_settings.c.account_id == account_id, region_settings.c.region == region
        )
    )
    values = {
        "account_id": account_id,
        "region": region,
        "updated_at": now,
        "resource_type_opt_in_preference": merged_opt_in,
        "resource_type_management_preference": merged_mgmt,
    }
    conn.execute(region_settings.insert().values(**values))
    return values
