"""Composite (group) backups: the parent/child links between backup jobs
(``parent_job_id``, ``is_parent``) and between recovery points
(``parent_recovery_point_arn``, ``is_parent``, ``composite_member_identifier``).

A parent job's worker (backup or restore) inserts its children itself, already RUNNING
and held by the same worker (never queued, so they start together); a child has no
lease of its own (``lease_expires_at`` NULL, so the lease sweep never picks it): its
parent's lease covers it, and when the parent's worker is lost its active children are
ended with it (:func:`end_active_children`, :func:`end_active_restore_children`).

    >>> # child = composite.insert_child(conn, record)   # None: the member is busy
    >>> # points = composite.child_points(conn, parent_arn)

Must not depend on anything above ``snowvault.control.model``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from snowvault.control.catalog.tables import backup_jobs as bj
from snowvault.control.catalog.tables import recovery_points as rp
from snowvault.control.catalog.tables import restore_jobs as rj
from snowvault.control.model import jobs as job_rules
from snowvault.control.model.jobs import BackupJob, RecoveryPoint, RestoreJob

_ACTIVE = job_rules.BACKUP.active
_RESTORE_ACTIVE = job_rules.RESTORE.active


def insert_child(conn: Connection, job: BackupJob) -> bool:
    """Insert a child job as given (RUNNING); False when the member already has a running
    backup job (the one-running-per-resource index refused it)."""
    try:
        with conn.begin_nested():
            conn.execute(bj.insert().values(**job.as_row()))
    except IntegrityError:
        return False
    return True


def children(conn: Connection, parent_job_id: str) -> list[BackupJob]:
    """A parent job's children, oldest first."""
    stmt = (
        sa.select(bj)
        .where(bj.c.parent_job_id == parent_job_id)
        .order_by(bj.c.creation_date, bj.c.job_id)
    )
    return [BackupJob.from_row(r._mapping) for r in conn.execute(stmt)]


def end_active_children(
    conn: Connection, parent_job_ids: Sequence[str], *, now: datetime, state: str, message: str
) -> list[str]:
    """End the still-active children of the given parents (their worker is gone, or the
    parent starts again); the ids ended."""
    if not parent_job_ids:
        return []
    where = sa.and_(bj.c.parent_job_id.in_(list(parent_job_ids)), bj.c.state.in_(_ACTIVE))
    ids = list(conn.execute(sa.select(bj.c.job_id).where(where)).scalars())
    if ids:
        conn.execute(
            bj.update()
            .where(where, bj.c.job_id.in_(ids))
            .values(
                state=state,
                status_message=message,
                message_category=state,
                completion_date=now,
                lease_owner=None,
                lease_expires_at=None,
            )
        )
    return ids


def child_points(conn: Connection, parent_arn: str) -> list[RecoveryPoint]:
    """The nested recovery points of a composite one, by member identifier."""
    stmt = (
        sa.select(rp)
        .where(rp.c.parent_recovery_point_arn == parent_arn)
        .order_by(rp.c.composite_member_identifier, rp.c.arn)
    )
    return [RecoveryPoint.from_row(r._mapping) for r in conn.execute(stmt)]


def detach(conn: Connection, parent_arn: str) -> int:
    """Make a parent's children standalone points (the parent never came to be, or is
    made again); how many."""
    stmt = (
        rp.update()
        .where(rp.c.parent_recovery_point_arn == parent_arn)
        .values(parent_recovery_point_arn=None)
    )
    return int(conn.execute(stmt).rowcount)


def disassociate(conn: Connection, arn: str) -> bool:
    """DisassociateRecoveryPointFromParent: the point is no longer a member (no parent,
    no member identifier); False when it had no parent."""
    stmt = (
        rp.update()
        .where(rp.c.arn == arn, rp.c.parent_recovery_point_arn.is_not(None))
        .values(parent_recovery_point_arn=None, composite_member_identifier=None)
    )
    return bool(conn.execute(stmt).rowcount)


def restore_children(conn: Connection, parent_job_id: str) -> list[RestoreJob]:
    """A parent restore job's children, in the order they were made."""
    stmt = (
        sa.select(rj)
        .where(rj.c.parent_job_id == parent_job_id)
        .order_by(rj.c.creation_date, rj.c.restore_job_id)
    )
    return [RestoreJob.from_row(r._mapping) for r in conn.execute(stmt)]


def end_active_restore_children(
    conn: Connection, parent_job_ids: Sequence[str], *, now: datetime, message: str
) -> list[str]:
    """FAIL the still-running children of the given parent restore jobs; the ids."""
    if not parent_job_ids:
        return []
    where = sa.and_(rj.c.parent_job_id.in_(list(parent_job_ids)), rj.c.status.in_(_RESTORE_ACTIVE))
    ids = list(conn.execute(sa.select(rj.c.restore_job_id).where(where)).scalars())
    if ids:
        conn.execute(
            rj.update()
            .where(where, rj.c.restore_job_id.in_(ids))
            .values(
                status=job_rules.RestoreJobStatus.FAILED,
                status_message=message,
                completion_date=now,
                lease_owner=None,
                lease_expires_at=None,
            )
        )
    return ids
