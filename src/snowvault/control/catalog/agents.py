"""Enrolled agents: one row per (account, host), naming the agent's principal.

The principal and its access key live in the accounts tables; enrolling inserts the
three rows in one transaction (services/agents.py), revoking deletes them.

Must not depend on anything above ``snowvault.core``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from snowvault.control.catalog.tables import agent_jobs, agents, backup_jobs
from snowvault.core.errors import AlreadyExists, NotFound


@dataclass(frozen=True)
class Agent:
    """One enrolled host of an account."""

    account_id: str
    host: str
    principal_arn: str
    enrolled_at: datetime
    version: str | None
    last_seen_at: datetime | None

    @classmethod
    def from_row(cls, row: Any) -> Agent:
        return cls(
            account_id=row["account_id"],
            host=row["host"],
            principal_arn=row["principal_arn"],
            enrolled_at=row["enrolled_at"],
            version=row["version"],
            last_seen_at=row["last_seen_at"],
        )


def create(
    conn: Connection, *, account_id: str, host: str, principal_arn: str, now: datetime
) -> Agent:
    values = {
        "account_id": account_id,
        "host": host,
        "principal_arn": principal_arn,
        "enrolled_at": now,
        "version": None,
        "last_seen_at": None,
    }
    try:
        with conn.begin_nested():
            conn.execute(agents.insert().values(**values))
    except IntegrityError as exc:
        raise AlreadyExists(kind="agent", name=host) from exc
    return Agent.from_row(values)


def get(conn: Connection, *, account_id: str, host: str) -> Agent:
    stmt = sa.select(agents).where(agents.c.account_id == account_id, agents.c.host == host)
    row = conn.execute(stmt).mappings().first()
    if row is None:
        raise NotFound(kind="agent", name=host)
    return Agent.from_row(row)


def find_by_principal(conn: Connection, principal_arn: str) -> Agent | None:
    row = (
        conn.execute(sa.select(agents).where(agents.c.principal_arn == principal_arn))
        .mappings()
        .first()
    )
    return None if row is None else Agent.from_row(row)


def list_by_account(conn: Connection, account_id: str) -> list[Agent]:
    stmt = sa.select(agents).where(agents.c.account_id == account_id).order_by(agents.c.host)
    return [Agent.from_row(r) for r in conn.execute(stmt).mappings()]


def delete(conn: Connection, *, account_id: str, host: str) -> None:
    stmt = agents.delete().where(agents.c.account_id == account_id, agents.c.host == host)
    if conn.execute(stmt).rowcount == 0:
        raise NotFound(kind="agent", name=host)


def seen(conn: Connection, principal_arn: str, *, version: str, now: datetime) -> None:
    """Record the version an agent reported and when."""
    conn.execute(
        agents.update()
        .where(agents.c.principal_arn == principal_arn)
        .values(version=version, last_seen_at=now)
    )


# --- the data key of each job attempt an agent runs ---------------------------------


def put_job_key(
    conn: Connection, *, job_id: str, attempt: int, host: str, sealed_key: bytes, now: datetime
) -> None:
    """Store (or replace, for a new attempt) the sealed data key of ``job_id``."""
    conn.execute(agent_jobs.delete().where(agent_jobs.c.job_id == job_id))
    conn.execute(
        agent_jobs.insert().values(
            job_id=job_id, attempt=attempt, host=host, sealed_key=sealed_key, created_at=now
        )
    )


def job_key(conn: Connection, job_id: str) -> tuple[int, str, bytes] | None:
    """(attempt, host, sealed key) of ``job_id``, None when it has none."""
    row = conn.execute(
        sa.select(agent_jobs.c.attempt, agent_jobs.c.host, agent_jobs.c.sealed_key).where(
            agent_jobs.c.job_id == job_id
        )
    ).first()
    return None if row is None else (int(row[0]), str(row[1]), bytes(row[2]))


def drop_job_key(conn: Connection, job_id: str) -> None:
    conn.execute(agent_jobs.delete().where(agent_jobs.c.job_id == job_id))


def leased_job_ids(conn: Connection, worker_label: str) -> list[str]:
    """Backup jobs running (or stopping) under a lease held by ``worker_label``."""
    stmt = sa.select(backup_jobs.c.job_id).where(
        backup_jobs.c.lease_owner == worker_label,
        backup_jobs.c.state.in_(("RUNNING", "ABORTING")),
    )
    return [str(r[0]) for r in conn.execute(stmt.order_by(backup_jobs.c.job_id))]
