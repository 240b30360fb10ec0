"""Idempotency tokens: (account, operation, token) -> the result first returned.

``remember`` is race-safe: when two requests with one token race, the loser gets the
winner's stored result back, so both answer the same.

    >>> # first = idempotency.remember(conn, account_id=a, operation="StartBackupJob",
    >>> #                              token=t, result={"BackupJobId": j}, now=now)

Must not depend on anything above ``snowvault.core``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from snowvault.control.catalog.tables import idempotency


def lookup(conn: Connection, *, account_id: str, operation: str, token: str) -> Any | None:
    """The result stored for this token, or None if it is new."""
    row = conn.execute(
        sa.select(idempotency.c.result).where(
            idempotency.c.account_id == account_id,
            idempotency.c.operation == operation,
            idempotency.c.token == token,
        )
    ).first()
    return None if row is None else row.result


def remember(
    conn: Connection, *, account_id: str, operation: str, token: str, result: Any, now: datetime
) -> Any:
    """Store ``result`` for the token and return it, or return the one stored before."""
    try:
        with conn.begin_nested():
            conn.execute(
                idempotency.insert().values(
                    account_id=account_id,
                    operation=operation,
                    token=token,
                    result=result,
                    created_at=now,
                )
            )
    except IntegrityError:
        return lookup(conn, account_id=account_id, operation=operation, token=token)
    return result


def purge_before(conn: Connection, before: datetime) -> int:
    """Forget tokens older than ``before``; returns how many went."""
    return conn.execute(idempotency.delete().where(idempotency.c.created_at < before)).rowcount
