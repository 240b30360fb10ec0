"""Shared constants and builders for the catalog tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Connection

from snowvault.control import catalog

PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
ACCOUNT = "111122223333"
REGION = "us-east-1"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def pg_admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3) as conn:
        conn.execute(sql)


def make_vault(conn: Connection, name: str = "main", account: str = ACCOUNT) -> dict[str, Any]:
    arn = f"arn:aws:backup:{REGION}:{account}:backup-vault:{name}"
    return catalog.vaults.create(
        conn,
        arn=arn,
        account_id=account,
        region=REGION,
        name=name,
        creation_date=T0,
        storage_url=f"file:///vaults/{name}",
    )
