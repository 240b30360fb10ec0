"""Backup jobs: create, describe, list (every ListBackupJobs filter), summaries, stop,
start-window expiry, and :data:`QUEUE`, the table as a lease queue (claim, heartbeat,
complete, release, lease recovery). Jobs come back as
:class:`snowvault.control.model.jobs.BackupJob`.

One backup job per resource runs at a time: a claim skips jobs whose resource already
has a RUNNING or ABORTING job, and a partial unique index makes it so under races.

    >>> # job = jobs.QUEUE.claim(conn, worker_id="w1", labels=["host-a"],
    >>> #                        lease_seconds=60, now=clock.now())

Must not depend on anything above ``snowvault.control.model``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from snowvault.control.catalog import pagination, queue, vaults
from snowvault.control.catalog.db import Record
from snowvault.control.catalog.tables import backup_jobs as bj
from snowvault.control.catalog.tables import restore_jobs as rj
from snowvault.control.model import jobs as job_rules
from snowvault.control.model.jobs import BackupJob
from snowvault.core.errors import AlreadyExists, Conflict, NotFound

MACHINE = job_rules.BACKUP
FINAL = MACHINE.final
ACTIVE = (*MACHINE.waiting, *MACHINE.active)
"""A job in these states writes, or will write, into its vault."""
RESTORE_ACTIVE = (*job_rules.RESTORE.waiting, *job_rules.RESTORE.active)
EXPIRED_MESSAGE = "the job did not start within its start window"

QUEUE = queue.Queue(
    queue.QueueSpec(
        table=bj,
        id_column="job_id",
        state_column="state",
        machine=MACHINE,
        progress=frozenset({"percent_done", "bytes_transferred", "backup_size_in_bytes"}),
        resource_column="resource_arn",
        start_by_column="start_by",
    ),
    BackupJob.from_row,
)
_ORDER = pagination.Order([bj.c.creation_date, bj.c.job_id], descending=True)


@dataclass(frozen=True)
class BackupJobFilters:
    """The By* filters of ListBackupJobs (None: no filter). ByAccountId is ``account_ids``."""

    resource_arn: str | None = None
    state: str | None = None
    backup_vault_name: str | None = None
    created_before: datetime | None = None
    created_after: datetime | None = None
    resource_type: str | None = None
    complete_after: datetime | None = None
    complete_before: datetime | None = None
    parent_job_id: str | None = None
    message_category: str | None = None

    def apply(self, stmt: sa.Select[Any]) -> sa.Select[Any]:
        equal = {
            bj.c.resource_arn: self.resource_arn,
            bj.c.state: self.state,
            bj.c.backup_vault_name: self.backup_vault_name,
            bj.c.resource_type: self.resource_type,
            bj.c.parent_job_id: self.parent_job_id,
            bj.c.message_category: self.message_category,
        }
        ranges: list[pagination.Range] = [
            (bj.c.creation_date, self.created_after, self.created_before),
            (bj.c.completion_date, self.complete_after, self.complete_before),
        ]
        return pagination.filtered(stmt, equal.items(), ranges)


def create(conn: Connection, job: BackupJob) -> BackupJob:
    """Queue a new job (see :func:`snowvault.control.model.jobs.new_backup_job`); raises
    NotFound if the vault is gone. The vault row is held shared meanwhile
    (``vaults.lock``): a concurrent DeleteBackupVault either sees this job or makes this
    insert fail."""
    vaults.lock(conn, job.backup_vault_arn, shared=True)
    try:
        with conn.begin_nested():
            conn.execute(bj.insert().values(**job.as_row()))
    except IntegrityError as exc:
        raise AlreadyExists(kind="backup job", name=job.job_id) from exc
    return get(conn, job.job_id)


def get(conn: Connection, job_id: str, *, account_id: str | None = None) -> BackupJob:
    """DescribeBackupJob's job; with ``account_id``, it must belong to that account."""
    row = conn.execute(sa.select(bj).where(bj.c.job_id == job_id)).first()
    if row is None or (account_id is not None and row.account_id != account_id):
        raise NotFound(kind="backup job", name=job_id)
    return BackupJob.from_row(row._mapping)


@dataclass(frozen=True)
class VaultUse:
    """A job that writes into, or reads from, a vault right now."""

    kind: str  # "backup" or "restore"
    job_id: str
    state: str


def using_vault(conn: Connection, vault_arn: str, *, limit: int = 1) -> list[VaultUse]:
    """Jobs that use the vault: backup jobs writing (or about to write) into it, and
    restore jobs reading from it; the oldest first, at most ``limit`` of each kind."""
    backups = (
        sa.select(bj.c.job_id, bj.c.state)
        .where(bj.c.backup_vault_arn == vault_arn, bj.c.state.in_(ACTIVE))
        .order_by(bj.c.creation_date, bj.c.job_id)
        .limit(limit)
    )
    restores = (
        sa.select(rj.c.restore_job_id, rj.c.status)
        .where(rj.c.backup_vault_arn == vault_arn, rj.c.status.in_(RESTORE_ACTIVE))
        .order_by(rj.c.creation_date, rj.c.restore_job_id)
        .limit(limit)
    )
    found = [VaultUse("backup", r.job_id, r.state) for r in conn.execute(backups)]
    found += [VaultUse("restore", r.restore_job_id, r.status) for r in conn.execute(restores)]
    return found


def writing_into(conn: Connection, vault_arn: str) -> list[str]:
    """Ids of the backup jobs RUNNING (or ABORTING) into the vault: their packs are not
    referenced yet, so no orphan prune may run under them."""
    stmt = sa.select(bj.c.job_id).where(
        bj.c.backup_vault_arn == vault_arn, bj.c.state.in_(MACHINE.active)
    )
    return list(conn.execute(stmt.order_by(bj.c.job_id)).scalars())


def update(conn: Connection, job_id: str, **fields: Any) -> BackupJob:
    if conn.execute(bj.update().where(bj.c.job_id == job_id).values(**fields)).rowcount == 0:
        raise NotFound(kind="backup job", name=job_id)
    return get(conn, job_id)


def list_jobs(
    conn: Connection,
    *,
    region: str,
    account_ids: Sequence[str],
    filters: BackupJobFilters | None = None,
    limit: int | None = None,
    token: str | None = None,
) -> pagination.RecordPage[BackupJob]:
    """ListBackupJobs, newest first, over the given accounts (one, or an organization's)."""
    stmt = sa.select(bj).where(bj.c.region == region, bj.c.account_id.in_(list(account_ids)))
    stmt = (filters or BackupJobFilters()).apply(stmt)
    page = pagination.paginate(
        conn, stmt, kind="backup-jobs", order=_ORDER, limit=limit, token=token
    )
    return page.load(BackupJob.from_row)


def child_state_counts(conn: Connection, parent_job_id: str) -> dict[str, int]:
    """ChildJobsInState of a parent job: state -> number of children."""
    stmt = (
        sa.select(bj.c.state, sa.func.count())
        .where(bj.c.parent_job_id == parent_job_id)
        .group_by(bj.c.state)
    )
    return {state: int(n) for state, n in conn.execute(stmt)}


SUMMARY_DIMENSIONS = ("account_id", "state", "resource_type", "message_category")
AGGREGATE_ALL = "AGGREGATE_ALL"


def summaries(
    conn: Connection,
    *,
    region: str,
    account_ids: Sequence[str],
    windows: Sequence[tuple[datetime, datetime]],
    state: str | None = None,
    resource_type: str | None = None,
    message_category: str | None = None,
    aggregate: Collection[str] = (),
) -> list[Record]:
    """ListBackupJobSummaries: job counts per window (``[start, end)``, in order) and per
    account, state, resource type and message category, for jobs created in a window.
    A None filter means ANY (one count per value); a dimension named in ``aggregate``
    (of :data:`SUMMARY_DIMENSIONS`) is summed over and reported as ``AGGREGATE_ALL``.
    Windows with no job give no rows."""
    return table_summaries(
        conn,
        bj,
        region=region,
        account_ids=account_ids,
        windows=windows,
        only={"state": state, "resource_type": resource_type, "message_category": message_category},
        aggregate=aggregate,
    )


def table_summaries(
    conn: Connection,
    table: sa.Table,
    *,
    region: str,
    account_ids: Sequence[str],
    windows: Sequence[tuple[datetime, datetime]],
    only: Mapping[str, str | None],
    aggregate: Collection[str],
) -> list[Record]:
    """The rules of :func:`summaries` over any job table with ``creation_date``,
    ``region`` and the :data:`SUMMARY_DIMENSIONS` columns (copy jobs use it too);
    ``only``: dimension -> the value it must have (None: any)."""
    if not windows:
        return []
    stmt = sa.select(table.c.creation_date, *(table.c[d] for d in SUMMARY_DIMENSIONS)).where(
        table.c.region == region,
        table.c.account_id.in_(list(account_ids)),
        table.c.creation_date >= min(w[0] for w in windows),
        table.c.creation_date < max(w[1] for w in windows),
    )
    stmt = pagination.filtered(stmt, [(table.c[d], value) for d, value in only.items()])
    counts: Counter[tuple[int, tuple[str, ...]]] = Counter()
    for row in conn.execute(stmt):
        key = tuple(
            AGGREGATE_ALL if d in aggregate else str(getattr(row, d) or "")
            for d in SUMMARY_DIMENSIONS
        )
        for i, (start, end) in enumerate(windows):
            if start <= row.creation_date < end:
                counts[(i, key)] += 1
    return [
        dict(
            zip(SUMMARY_DIMENSIONS, key, strict=True),
            region=region,
            count=count,
            start_time=windows[i][0],
            end_time=windows[i][1],
        )
        for (i, key), count in sorted(counts.items())
    ]


def stop(
    conn: Connection, job_id: str, *, now: datetime, message: str = "stopped by request"
) -> BackupJob:
    """StopBackupJob (:func:`snowvault.control.model.jobs.stop_target`): a waiting job is
    ABORTED at once, a running one goes ABORTING. Raises Conflict for a finished job."""
    job = get(conn, job_id)
    target = job_rules.stop_target(job.state)
    if target is None:
        raise Conflict(detail=f"backup job {job_id} is {job.state} and cannot be stopped")
    values: dict[str, Any] = {"state": target, "status_message": message}
    if target in MACHINE.final:
        values["completion_date"] = now
    stmt = bj.update().where(bj.c.job_id == job_id, bj.c.state == job.state)
    if conn.execute(stmt.values(**values)).rowcount == 0:
        raise Conflict(detail=f"backup job {job_id} changed state; try again")
    return get(conn, job_id)


def expire_unstarted(conn: Connection, now: datetime) -> list[str]:
    """Waiting jobs whose start window closed become EXPIRED; returns their ids.

    The boundary is the model's (:func:`snowvault.control.model.windows.job_fate`): at
    exactly StartBy the job has expired (and :data:`QUEUE` no longer hands it out)."""
    late = sa.and_(bj.c.state.in_(MACHINE.waiting), queue.start_window_closed(bj.c.start_by, now))
    ids = [r.job_id for r in conn.execute(sa.select(bj.c.job_id).where(late))]
    if ids:
        conn.execute(
            bj.update()
            .where(late, bj.c.job_id.in_(ids))
            .values(
                state=job_rules.BackupJobState.EXPIRED,
                completion_date=now,
                status_message=EXPIRED_MESSAGE,
            )
        )
    return ids
