"""Copy jobs: create, describe, list (every ListCopyJobs filter), summaries, and
:data:`QUEUE`, the table as a lease queue (the same protocol as backup and restore jobs).
Jobs come back as :class:`snowvault.control.model.jobs.CopyJob`.

    >>> # job = copy_jobs.QUEUE.claim(conn, worker_id="w1", labels=[],
    >>> #                             lease_seconds=60, now=clock.now())

Must not depend on anything above ``snowvault.control.model``.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from snowvault.control.catalog import jobs, pagination, queue
from snowvault.control.catalog.db import Record
from snowvault.control.catalog.tables import copy_jobs as cj
from snowvault.control.model import jobs as job_rules
from snowvault.control.model.jobs import CopyJob
from snowvault.core.errors import AlreadyExists, NotFound

MACHINE = job_rules.COPY
ACTIVE = (*MACHINE.waiting, *MACHINE.active)
"""A copy job in these states writes, or will write, into its destination vault."""

QUEUE = queue.Queue(
    queue.QueueSpec(
        table=cj,
        id_column="copy_job_id",
        state_column="state",
        machine=MACHINE,
        progress=frozenset({"percent_done", "bytes_transferred", "backup_size_in_bytes"}),
    ),
    CopyJob.from_row,
)
_ORDER = pagination.Order([cj.c.creation_date, cj.c.copy_job_id], descending=True)


@dataclass(frozen=True)
class CopyJobFilters:
    """The By* filters of ListCopyJobs (None: no filter). ByAccountId is ``account_ids``."""

    resource_arn: str | None = None
    state: str | None = None
    created_before: datetime | None = None
    created_after: datetime | None = None
    resource_type: str | None = None
    destination_vault_arn: str | None = None
    complete_before: datetime | None = None
    complete_after: datetime | None = None
    parent_job_id: str | None = None
    message_category: str | None = None
    source_recovery_point_arn: str | None = None

    def apply(self, stmt: sa.Select[Any]) -> sa.Select[Any]:
        equal = {
            cj.c.resource_arn: self.resource_arn,
            cj.c.state: self.state,
            cj.c.resource_type: self.resource_type,
            cj.c.destination_backup_vault_arn: self.destination_vault_arn,
            cj.c.parent_job_id: self.parent_job_id,
            cj.c.message_category: self.message_category,
            cj.c.source_recovery_point_arn: self.source_recovery_point_arn,
        }
        ranges: list[pagination.Range] = [
            (cj.c.creation_date, self.created_after, self.created_before),
            (cj.c.completion_date, self.complete_after, self.complete_before),
        ]
        return pagination.filtered(stmt, equal.items(), ranges)


def create(conn: Connection, job: CopyJob) -> CopyJob:
    """Queue a new job (see :func:`snowvault.control.model.jobs.new_copy_job`)."""
    try:
        with conn.begin_nested():
            conn.execute(cj.insert().values(**job.as_row()))
    except IntegrityError as exc:
        raise AlreadyExists(kind="copy job", name=job.copy_job_id) from exc
    return get(conn, job.copy_job_id)


def get(conn: Connection, copy_job_id: str, *, account_id: str | None = None) -> CopyJob:
    """DescribeCopyJob's job; with ``account_id``, it must belong to that account."""
    row = conn.execute(sa.select(cj).where(cj.c.copy_job_id == copy_job_id)).first()
    if row is None or (account_id is not None and row.account_id != account_id):
        raise NotFound(kind="copy job", name=copy_job_id)
    return CopyJob.from_row(row._mapping)


def list_jobs(
    conn: Connection,
    *,
    region: str,
    account_ids: Sequence[str],
    filters: CopyJobFilters | None = None,
    limit: int | None = None,
    token: str | None = None,
) -> pagination.RecordPage[CopyJob]:
    """ListCopyJobs, newest first, over the given accounts (the source's: AWS lists a
    copy job in the account that started it)."""
    stmt = sa.select(cj).where(cj.c.region == region, cj.c.account_id.in_(list(account_ids)))
    stmt = (filters or CopyJobFilters()).apply(stmt)
    page = pagination.paginate(conn, stmt, kind="copy-jobs", order=_ORDER, limit=limit, token=token)
    return page.load(CopyJob.from_row)


def using_vault(conn: Connection, vault_arn: str, *, limit: int = 1) -> list[jobs.VaultUse]:
    """Copy jobs waiting or running into the vault, oldest first (DeleteBackupVault waits
    for them as for backup jobs; a copy only reads a source vault that holds points)."""
    stmt = (
        sa.select(cj.c.copy_job_id, cj.c.state)
        .where(cj.c.destination_backup_vault_arn == vault_arn, cj.c.state.in_(ACTIVE))
        .order_by(cj.c.creation_date, cj.c.copy_job_id)
        .limit(limit)
    )
    return [jobs.VaultUse("copy", r.copy_job_id, r.state) for r in conn.execute(stmt)]


SUMMARY_DIMENSIONS = jobs.SUMMARY_DIMENSIONS
AGGREGATE_ALL = jobs.AGGREGATE_ALL


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
    """ListCopyJobSummaries: job counts per window (``[start, end)``) and per account,
    state, resource type and message category, for jobs created in a window; the rules
    of ``catalog.jobs.summaries`` (None: one count per value; a dimension in
    ``aggregate`` is summed and reported as ``AGGREGATE_ALL``)."""
    return jobs.table_summaries(
        conn,
        cj,
        region=region,
        account_ids=account_ids,
        windows=windows,
        only={"state": state, "resource_type": resource_type, "message_category": message_category},
        aggregate=aggregate,
    )
