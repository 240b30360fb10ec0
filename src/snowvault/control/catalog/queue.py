"""The lease protocol shared by the backup and restore job tables (they ARE the queue).

A worker claims the oldest waiting job it may run, holds it by a lease it renews with
heartbeats, and ends it (complete) or hands it back (release). A job whose lease runs
out is recovered by the sweeper: retried while attempts remain, else FAILED; a job being
stopped when its worker died becomes ABORTED. No job stays RUNNING forever.

PostgreSQL picks the candidate with ``SELECT ... FOR UPDATE SKIP LOCKED``; SQLite runs
one ``UPDATE ... WHERE id = (SELECT ... LIMIT 1) RETURNING`` inside ``BEGIN IMMEDIATE``
(writers are serialised, so the statement is atomic). Where a table allows one active
job per resource, a partial unique index enforces it; a claim that loses that race
returns None and the worker simply asks again.

Must not depend on anything above ``snowvault.core``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from snowvault.control.catalog.db import Record, is_sqlite

LOST_WORKER_MESSAGE = "the worker running this job stopped answering"


@dataclass(frozen=True)
class QueueSpec:
    """How one job table plays the queue."""

    table: sa.Table
    id_column: str
    state_column: str
    waiting: tuple[str, ...]
    retry_state: str
    stopping: str | None = None
    resource_column: str | None = None
    start_by_column: str | None = None
    running: str = "RUNNING"
    failed: str = "FAILED"
    aborted: str = "ABORTED"

    def col(self, name: str) -> sa.Column[Any]:
        return self.table.c[name]

    @property
    def id(self) -> sa.Column[Any]:
        return self.table.c[self.id_column]

    @property
    def state(self) -> sa.Column[Any]:
        return self.table.c[self.state_column]

    @property
    def active(self) -> tuple[str, ...]:
        return (self.running,) + ((self.stopping,) if self.stopping else ())


def _candidate(spec: QueueSpec, labels: Sequence[str], now: datetime) -> sa.Select[Any]:
    t = spec.table
    label: sa.ColumnElement[bool] = t.c.worker_label.is_(None)
    if labels:
        label = sa.or_(label, t.c.worker_label.in_(list(labels)))
    stmt = sa.select(spec.id).where(spec.state.in_(spec.waiting), label)
    if spec.start_by_column:
        start_by = spec.col(spec.start_by_column)
        stmt = stmt.where(sa.or_(start_by.is_(None), start_by >= now))
    if spec.resource_column:
        other = t.alias("other")
        busy = sa.exists().where(
            other.c[spec.resource_column] == spec.col(spec.resource_column),
            other.c[spec.state_column].in_(spec.active),
        )
        stmt = stmt.where(~busy)
    return stmt.order_by(t.c.creation_date, spec.id).limit(1)


def _claim_values(
    spec: QueueSpec, worker_id: str, lease_seconds: float, now: datetime
) -> dict[str, Any]:
    t = spec.table
    return {
        spec.state_column: spec.running,
        "lease_owner": worker_id,
        "lease_expires_at": now + timedelta(seconds=lease_seconds),
        "heartbeat_at": now,
        "attempts": t.c.attempts + 1,
        "start_date": sa.func.coalesce(t.c.start_date, now),
    }


def claim(
    conn: Connection,
    spec: QueueSpec,
    *,
    worker_id: str,
    labels: Sequence[str],
    lease_seconds: float,
    now: datetime,
) -> Record | None:
    """Claim the oldest waiting job this worker may run, or None if there is none."""
    candidate = _candidate(spec, labels, now)
    if is_sqlite(conn):
        target: Any = candidate.correlate(None).scalar_subquery()
    else:
        target = conn.execute(candidate.with_for_update(skip_locked=True)).scalar()
        if target is None:
            return None
    stmt = (
        spec.table.update()
        .where(spec.id == target, spec.state.in_(spec.waiting))
        .values(**_claim_values(spec, worker_id, lease_seconds, now))
        .returning(*spec.table.c)
    )
    try:
        with conn.begin_nested():
            row = conn.execute(stmt).first()
    except IntegrityError:
        return None  # another worker just started a job for the same resource
    if row is None or row._mapping["lease_owner"] != worker_id:
        return None
    return dict(row._mapping)


def _owned(spec: QueueSpec, job_id: str, worker_id: str) -> sa.ColumnElement[bool]:
    return sa.and_(
        spec.id == job_id, spec.table.c.lease_owner == worker_id, spec.state.in_(spec.active)
    )


def heartbeat(
    conn: Connection,
    spec: QueueSpec,
    *,
    job_id: str,
    worker_id: str,
    now: datetime,
    lease_seconds: float,
    **progress: Any,
) -> str | None:
    """Renew the lease and store progress; returns the job's state, None if the lease is lost.

    A worker that reads back ``ABORTING`` should stop and complete the job as ABORTED.
    """
    values = dict(
        progress, heartbeat_at=now, lease_expires_at=now + timedelta(seconds=lease_seconds)
    )
    stmt = (
        spec.table.update()
        .where(_owned(spec, job_id, worker_id))
        .values(**values)
        .returning(spec.state)
    )
    state = conn.execute(stmt).scalar()
    return None if state is None else str(state)


def complete(
    conn: Connection,
    spec: QueueSpec,
    *,
    job_id: str,
    worker_id: str,
    now: datetime,
    state: str,
    **fields: Any,
) -> bool:
    """End the job in ``state`` (COMPLETED, FAILED, ABORTED...); False if the lease is lost."""
    values = dict(fields, lease_owner=None, lease_expires_at=None, completion_date=now)
    values[spec.state_column] = state
    stmt = spec.table.update().where(_owned(spec, job_id, worker_id)).values(**values)
    return bool(conn.execute(stmt).rowcount)


def release(
    conn: Connection,
    spec: QueueSpec,
    *,
    job_id: str,
    worker_id: str,
    status_message: str | None = None,
) -> bool:
    """Hand a running job back to the queue (worker shutting down); False if not ours."""
    values = {
        spec.state_column: spec.retry_state,
        "lease_owner": None,
        "lease_expires_at": None,
        "status_message": status_message,
    }
    stmt = (
        spec.table.update()
        .where(_owned(spec, job_id, worker_id), spec.state == spec.running)
        .values(**values)
    )
    return bool(conn.execute(stmt).rowcount)


def find_expired_leases(conn: Connection, spec: QueueSpec, now: datetime) -> list[Record]:
    """Active jobs whose lease ran out before ``now`` (their worker is presumed dead)."""
    stmt = (
        sa.select(spec.table)
        .where(spec.state.in_(spec.active), spec.table.c.lease_expires_at < now)
        .order_by(spec.table.c.lease_expires_at, spec.id)
    )
    return [dict(r._mapping) for r in conn.execute(stmt)]


def _recovered_state(spec: QueueSpec, job: Record) -> str:
    if job[spec.state_column] == spec.stopping:
        return spec.aborted
    return spec.retry_state if job["attempts"] < job["max_attempts"] else spec.failed


def recover_expired_leases(conn: Connection, spec: QueueSpec, now: datetime) -> list[Record]:
    """Retry, fail or abort every job with an expired lease; returns (id, new state) rows.

    Each update re-checks owner and expiry, so a heartbeat that lands first wins.
    """
    recovered = []
    for job in find_expired_leases(conn, spec, now):
        new_state = _recovered_state(spec, job)
        values: dict[str, Any] = {
            spec.state_column: new_state,
            "lease_owner": None,
            "lease_expires_at": None,
            "status_message": LOST_WORKER_MESSAGE,
        }
        if new_state != spec.retry_state:
            values["completion_date"] = now
        stmt = (
            spec.table.update()
            .where(
                spec.id == job[spec.id_column],
                spec.table.c.lease_owner == job["lease_owner"],
                spec.table.c.lease_expires_at < now,
                spec.state.in_(spec.active),
            )
            .values(**values)
        )
        if conn.execute(stmt).rowcount:
            recovered.append({spec.id_column: job[spec.id_column], "state": new_state})
    return recovered
