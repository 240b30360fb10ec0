"""Restore jobs: create, describe, list (ListRestoreJobs and ...ByProtectedResource),
and :data:`QUEUE`, the table as a lease queue (the same protocol as backup jobs). Jobs
come back as :class:`snowvault.control.model.jobs.RestoreJob`.

Must not depend on anything above ``snowvault.control.model``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from snowvault.control.catalog import pagination, queue
from snowvault.control.catalog.tables import restore_jobs as rj
from snowvault.control.model import jobs as job_rules
from snowvault.control.model.jobs import RestoreJob
from snowvault.core.errors import AlreadyExists, NotFound

QUEUE = queue.Queue(
    queue.QueueSpec(
        table=rj,
        id_column="restore_job_id",
        state_column="status",
        machine=job_rules.RESTORE,
        progress=frozenset({"percent_done", "bytes_transferred"}),
    ),
    RestoreJob.from_row,
)
_ORDER = pagination.Order([rj.c.creation_date, rj.c.restore_job_id], descending=True)


@dataclass(frozen=True)
class RestoreJobFilters:
    """The By* filters of ListRestoreJobs and ListRestoreJobsByProtectedResource."""

    resource_type: str | None = None
    status: str | None = None
    parent_job_id: str | None = None
    created_before: datetime | None = None
    created_after: datetime | None = None
    complete_before: datetime | None = None
    complete_after: datetime | None = None
    recovery_point_created_before: datetime | None = None
    recovery_point_created_after: datetime | None = None

    def apply(self, stmt: sa.Select[Any]) -> sa.Select[Any]:
        equal = {
            rj.c.resource_type: self.resource_type,
            rj.c.status: self.status,
            rj.c.parent_job_id: self.parent_job_id,
        }
        ranges: list[pagination.Range] = [
            (rj.c.creation_date, self.created_after, self.created_before),
            (rj.c.completion_date, self.complete_after, self.complete_before),
            (
                rj.c.recovery_point_creation_date,
                self.recovery_point_created_after,
                self.recovery_point_created_before,
            ),
        ]
        return pagination.filtered(stmt, equal.items(), ranges)


def create(
    conn: Connection,
    *,
    restore_job_id: str,
    account_id: str,
    region: str,
    recovery_point_arn: str,
    creation_date: datetime,
    status: str = job_rules.RestoreJobStatus.PENDING,
    **fields: Any,
) -> RestoreJob:
    """StartRestoreJob's row."""
    values = dict(
        fields,
        restore_job_id=restore_job_id,
        account_id=account_id,
        region=region,
        recovery_point_arn=recovery_point_arn,
        creation_date=creation_date,
        status=status,
    )
    try:
        with conn.begin_nested():
            conn.execute(rj.insert().values(**values))
    except IntegrityError as exc:
        raise AlreadyExists(kind="restore job", name=restore_job_id) from exc
    return get(conn, restore_job_id)


def get(conn: Connection, restore_job_id: str, *, account_id: str | None = None) -> RestoreJob:
    """DescribeRestoreJob's job; with ``account_id``, it must belong to that account."""
    row = conn.execute(sa.select(rj).where(rj.c.restore_job_id == restore_job_id)).first()
    if row is None or (account_id is not None and row.account_id != account_id):
        raise NotFound(kind="restore job", name=restore_job_id)
    return RestoreJob.from_row(row._mapping)


def update(conn: Connection, restore_job_id: str, **fields: Any) -> RestoreJob:
    stmt = rj.update().where(rj.c.restore_job_id == restore_job_id).values(**fields)
    if conn.execute(stmt).rowcount == 0:
        raise NotFound(kind="restore job", name=restore_job_id)
    return get(conn, restore_job_id)


def list_jobs(
    conn: Connection,
    *,
    region: str,
    account_ids: Sequence[str],
    filters: RestoreJobFilters | None = None,
    limit: int | None = None,
    token: str | None = None,
) -> pagination.RecordPage[RestoreJob]:
    """ListRestoreJobs, newest first."""
    stmt = sa.select(rj).where(rj.c.region == region, rj.c.account_id.in_(list(account_ids)))
    stmt = (filters or RestoreJobFilters()).apply(stmt)
    page = pagination.paginate(
        conn, stmt, kind="restore-jobs", order=_ORDER, limit=limit, token=token
    )
    return page.load(RestoreJob.from_row)


def list_by_protected_resource(
    conn: Connection,
    *,
    account_id: str,
    resource_arn: str,
    filters: RestoreJobFilters | None = None,
    limit: int | None = None,
    token: str | None = None,
) -> pagination.RecordPage[RestoreJob]:
    """ListRestoreJobsByProtectedResource, newest first."""
    stmt = sa.select(rj).where(
        rj.c.account_id == account_id, rj.c.source_resource_arn == resource_arn
    )
    stmt = (filters or RestoreJobFilters()).apply(stmt)
    page = pagination.paginate(
        conn, stmt, kind="restore-jobs-by-resource", order=_ORDER, limit=limit, token=token
    )
    return page.load(RestoreJob.from_row)
