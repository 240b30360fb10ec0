"""The scheduler's state: due rules, the exactly-once run ledger, overdue jobs, lifecycle
records, and the next instant anything becomes due.

Exactly once: :func:`claim_runs` inserts (rule, occurrence, resource) rows with
``ON CONFLICT DO NOTHING`` (SQLite and PostgreSQL alike) and hands back only the rows
THIS transaction inserted (those holding the job ids it proposed); the caller creates
jobs for exactly those, in the same transaction. Two planners racing on PostgreSQL
serialise on the primary key (the second waits for the first to commit, then inserts
nothing); on SQLite writers are serialised by ``BEGIN IMMEDIATE``. A crash before
commit leaves neither run nor job.

    >>> # new = schedule_runs.claim_runs(conn, [{"rule_id": r, "scheduled_at": t,
    >>> #          "resource_arn": a, "job_id": j, "created_at": now}])

Must not depend on anything above ``snowvault.core``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from snowvault.control.catalog.db import Record, is_sqlite
from snowvault.control.catalog.tables import backup_jobs as bj
from snowvault.control.catalog.tables import backup_plans as bp
from snowvault.control.catalog.tables import backup_rules as br
from snowvault.control.catalog.tables import copy_jobs as cj
from snowvault.control.catalog.tables import lifecycle_runs as lr
from snowvault.control.catalog.tables import recovery_points as rp
from snowvault.control.catalog.tables import scheduled_runs as sr

OVERDUE_MESSAGE = "the job did not finish within its completion window"


def _insert(conn: Connection, table: sa.Table) -> Any:
    return sqlite.insert(table) if is_sqlite(conn) else postgresql.insert(table)


# --- rules ----------------------------------------------------------------------------


def due_rules(conn: Connection, now: datetime) -> list[Record]:
    """Enabled rules of live plans whose next run is at or before ``now``, with the plan's
    account, region, arn and current version."""
    stmt = (
        sa.select(br, bp.c.account_id, bp.c.region, bp.c.arn.label("plan_arn"), bp.c.version_id)
        .join(bp, bp.c.backup_plan_id == br.c.backup_plan_id)
        .where(br.c.enabled.is_(True), br.c.next_run_at <= now, bp.c.deletion_date.is_(None))
        .order_by(br.c.next_run_at, br.c.rule_id)
    )
    return [dict(r._mapping) for r in conn.execute(stmt)]


def advance_rule(
    conn: Connection, rule_id: str, *, planned_until: datetime, next_run_at: datetime | None
) -> bool:
    """Record planning progress; never moves backwards (a slower planner loses)."""
    stmt = (
        br.update()
        .where(br.c.rule_id == rule_id, br.c.planned_until < planned_until)
        .values(planned_until=planned_until, next_run_at=next_run_at)
    )
    return bool(conn.execute(stmt).rowcount)


def next_rule_run(conn: Connection, *, after: datetime) -> datetime | None:
    """The earliest next run after ``after`` of any enabled rule of a live plan."""
    stmt = (
        sa.select(sa.func.min(br.c.next_run_at))
        .join(bp, bp.c.backup_plan_id == br.c.backup_plan_id)
        .where(br.c.enabled.is_(True), bp.c.deletion_date.is_(None), br.c.next_run_at > after)
    )
    value: datetime | None = conn.execute(stmt).scalar()
    return _aware(conn, value)


def _aware(conn: Connection, value: datetime | None) -> datetime | None:
    # Aggregates bypass the column type: coerce like UTCDateTime does.
    from snowvault.control.catalog.tables import UTCDateTime

    return UTCDateTime().process_result_value(value, conn.dialect)


# --- the run ledger -------------------------------------------------------------------


def claim_runs(conn: Connection, runs: Sequence[Record]) -> list[Record]:
    """Insert (rule_id, scheduled_at, resource_arn, job_id, created_at) rows; return the
    ones inserted now (a triple already claimed, by anyone, is skipped).

    One executemany ``INSERT ... ON CONFLICT DO NOTHING``, then one read of the ledger
    rows of these rules and occurrences: a row is ours when it holds the fresh job id we
    proposed for it (ids are random UUIDs, so no other planner holds one of them)."""
    if not runs:
        return []
    key = ["rule_id", "scheduled_at", "resource_arn"]
    bulk_insert(conn, sr, runs, on_conflict_do_nothing=key)
    rule_ids = sorted({r["rule_id"] for r in runs})
    times = sorted({r["scheduled_at"] for r in runs})
    stmt = sa.select(sr.c.job_id).where(sr.c.rule_id.in_(rule_ids), sr.c.scheduled_at.in_(times))
    proposed = {r["job_id"] for r in runs}
    inserted = proposed.intersection(conn.execute(stmt).scalars().all())
    return [r for r in runs if r["job_id"] in inserted]


def create_jobs(conn: Connection, rows: Sequence[Record]) -> None:
    """Insert scheduled backup jobs in one executemany (rows: backup_jobs columns; every
    row must carry the same keys)."""
    if rows:
        bulk_insert(conn, bj, rows)


def bulk_insert(
    conn: Connection,
    table: sa.Table,
    rows: Sequence[Record],
    *,
    on_conflict_do_nothing: Sequence[str] | None = None,
) -> None:
    """``INSERT`` ``rows`` (all with the same keys) as one DBAPI executemany, converting
    each DISTINCT value of a column once with that column's own bind processor.

    A tick's thousands of jobs share a few values per column (the same ``now``, StartBy,
    plan, lifecycle document): SQLAlchemy's executemany would run the JSON and datetime
    processors once per row and cell, most of the time of a 10,000-job tick. Mapping
    values (dicts, lists) are memoised by identity while ``rows`` holds them alive.
    ``on_conflict_do_nothing``: skip rows that clash on these columns' unique key.
    """
    keys = list(rows[0])
    dialect = conn.dialect
    stmt: Any = table.insert()
    if on_conflict_do_nothing is not None:
        stmt = _insert(conn, table).on_conflict_do_nothing(index_elements=on_conflict_do_nothing)
    compiled = stmt.compile(dialect=dialect, column_keys=keys)
    names = list(compiled.positiontup or ()) if dialect.positional else keys
    if sorted(names) != sorted(keys):
        raise ValueError(f"bulk insert into {table.name}: unexpected parameters {names}")
    columns = [_column_values(table.c[k].type, dialect, [row[k] for row in rows]) for k in names]
    if dialect.positional:
        params: list[Any] = list(zip(*columns, strict=True))
    else:
        params = [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]
    conn.exec_driver_sql(str(compiled), params)


def _column_values(type_: Any, dialect: Any, values: list[Any]) -> list[Any]:
    """``values`` through the column type's bind processor, once per distinct value."""
    process = type_.dialect_impl(dialect).bind_processor(dialect)
    if process is None:
        return values
    seen: dict[tuple[str, Any], Any] = {}
    out = []
    for value in values:
        key = ("id", id(value)) if isinstance(value, dict | list) else ("v", value)
        if key not in seen:
            seen[key] = process(value)
        out.append(seen[key])
    return out


def runs_for_rule(conn: Connection, rule_id: str) -> list[Record]:
    stmt = (
        sa.select(sr).where(sr.c.rule_id == rule_id).order_by(sr.c.scheduled_at, sr.c.resource_arn)
    )
    return [dict(r._mapping) for r in conn.execute(stmt)]


# --- job windows ----------------------------------------------------------------------


def abort_overdue(conn: Connection, now: datetime) -> list[str]:
    """Running jobs past their completion window are asked to stop (ABORTING; their worker
    ends them ABORTED on its next heartbeat, or the lease sweeper does)."""
    late = sa.and_(bj.c.state == "RUNNING", bj.c.expected_completion_date <= now)
    ids = [r.job_id for r in conn.execute(sa.select(bj.c.job_id).where(late))]
    if ids:
        conn.execute(
            bj.update()
            .where(late, bj.c.job_id.in_(ids))
            .values(state="ABORTING", status_message=OVERDUE_MESSAGE)
        )
    return ids


def count_runnable_jobs(conn: Connection, now: datetime) -> int:
    """Backup and copy jobs a label-less worker could run now, or that are running."""
    waiting = sa.and_(
        bj.c.state.in_(("CREATED", "PENDING")),
        bj.c.worker_label.is_(None),
        sa.or_(bj.c.start_by.is_(None), bj.c.start_by >= now),
    )
    stmt = sa.select(sa.func.count()).where(
        sa.or_(waiting, bj.c.state.in_(("RUNNING", "ABORTING")))
    )
    copies = sa.select(sa.func.count()).where(  # a rule's CopyActions run after its backups
        sa.or_(
            sa.and_(cj.c.state == "CREATED", cj.c.worker_label.is_(None)), cj.c.state == "RUNNING"
        )
    )
    return int(conn.execute(stmt).scalar_one()) + int(conn.execute(copies).scalar_one())


# --- lifecycle records ------------------------------------------------------------------


def start_lifecycle_run(
    conn: Connection,
    *,
    recovery_point_arn: str,
    action: str,
    due_at: datetime,
    now: datetime,
    backup_vault_arn: str | None,
) -> bool:
    """Record that ``action`` (COLD, EXPIRE) starts on a recovery point; False if another
    sweeper already started it."""
    stmt = (
        _insert(conn, lr)
        .values(
            recovery_point_arn=recovery_point_arn,
            action=action,
            due_at=due_at,
            started_at=now,
            status="RUNNING",
            backup_vault_arn=backup_vault_arn,
        )
        .on_conflict_do_nothing(index_elements=["recovery_point_arn", "action"])
    )
    return bool(conn.execute(stmt).rowcount)


def finish_lifecycle_run(
    conn: Connection,
    *,
    recovery_point_arn: str,
    action: str,
    status: str,
    now: datetime,
    message: str | None = None,
) -> None:
    conn.execute(
        lr.update()
        .where(lr.c.recovery_point_arn == recovery_point_arn, lr.c.action == action)
        .values(status=status, completed_at=now, status_message=message)
    )


def retry_lifecycle_run(conn: Connection, *, recovery_point_arn: str, action: str) -> None:
    """Forget a failed attempt so the next sweep tries again."""
    conn.execute(
        lr.delete().where(
            lr.c.recovery_point_arn == recovery_point_arn,
            lr.c.action == action,
            lr.c.status != "COMPLETED",
        )
    )


def list_lifecycle_runs(conn: Connection, *, recovery_point_arn: str | None = None) -> list[Record]:
    stmt = sa.select(lr).order_by(lr.c.started_at, lr.c.recovery_point_arn, lr.c.action)
    if recovery_point_arn is not None:
        stmt = stmt.where(lr.c.recovery_point_arn == recovery_point_arn)
    return [dict(r._mapping) for r in conn.execute(stmt)]


def next_lifecycle_event(conn: Connection, *, after: datetime) -> datetime | None:
    """The earliest cold transition or expiry of any recovery point after ``after``."""
    cold = sa.select(sa.func.min(rp.c.move_to_cold_at)).where(
        rp.c.storage_class == "WARM", rp.c.move_to_cold_at > after
    )
    expiry = sa.select(sa.func.min(rp.c.delete_at)).where(
        rp.c.status != "DELETING", rp.c.delete_at > after
    )
    found = [_aware(conn, conn.execute(q).scalar()) for q in (cold, expiry)]
    values = [v for v in found if v is not None]
    return min(values) if values else None
