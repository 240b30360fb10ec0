"""What the health probe and the metrics scrape read: small, bounded aggregate queries.

    with catalog.db.read_transaction(engine) as conn:
        catalog.observability.ping(conn)                  # raises if unreachable
        rows = catalog.observability.backup_job_counts(conn)

Every query here is an aggregate (GROUP BY over indexed columns) or capped with a
``LIMIT``, so a scrape costs the same whether the catalog holds ten jobs or a million.

Must not depend on anything above ``snowvault.core``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from snowvault.control.catalog.tables import (
    agents,
    backup_jobs,
    backup_rules,
    copy_jobs,
    integrity_checks,
    recovery_points,
    resources,
    restore_jobs,
    vaults,
)

RECENT_JOBS_LIMIT = 2000
"""How many recently completed jobs the duration summaries read at most per scrape."""


@dataclass(frozen=True)
class JobCount:
    kind: str
    account_id: str
    region: str
    vault: str  # the vault's name ("" when the job names none)
    state: str
    count: int
    bytes: int


@dataclass(frozen=True)
class FinishedJob:
    kind: str
    account_id: str
    region: str
    vault: str
    state: str
    seconds: float


@dataclass(frozen=True)
class VaultSize:
    account_id: str
    region: str
    vault: str
    recovery_points: int
    bytes: int


@dataclass(frozen=True)
class ResourceBackup:
    account_id: str
    region: str
    resource_arn: str
    resource_type: str
    registered_at: datetime
    last_success: datetime | None


def ping(conn: Connection) -> None:
    """One round trip to the catalog (raises the driver's error when it is down)."""
    conn.execute(sa.select(sa.literal(1))).scalar_one()


def _vault_name(arn: str | None) -> str:
    """The name in ``arn:aws:backup:REGION:ACCOUNT:backup-vault:NAME`` ('' if none)."""
    return (arn or "").rpartition(":")[2]


def job_counts(conn: Connection) -> list[JobCount]:
    """Backup and restore jobs counted by account, region, vault and state, with the
    sum of their transferred bytes."""
    b = backup_jobs.c
    rows: list[JobCount] = [
        JobCount("backup", r[0], r[1], r[2], r[3], int(r[4]), int(r[5] or 0))
        for r in conn.execute(
            sa.select(
                b.account_id,
                b.region,
                b.backup_vault_name,
                b.state,
                sa.func.count(),
                sa.func.sum(b.bytes_transferred),
            ).group_by(b.account_id, b.region, b.backup_vault_name, b.state)
        )
    ]
    r_ = restore_jobs.c
    for r in conn.execute(
        sa.select(
            r_.account_id,
            r_.region,
            r_.backup_vault_arn,
            r_.status,
            sa.func.count(),
            sa.func.sum(r_.bytes_transferred),
        ).group_by(r_.account_id, r_.region, r_.backup_vault_arn, r_.status)
    ):
        rows.append(
            JobCount("restore", r[0], r[1], _vault_name(r[2]), r[3], int(r[4]), int(r[5] or 0))
        )
    return rows


def finished_jobs(conn: Connection, *, since: datetime) -> list[FinishedJob]:
    """Jobs completed at or after ``since`` with a start date (at most
    :data:`RECENT_JOBS_LIMIT` of each kind, newest first)."""
    b, r = backup_jobs.c, restore_jobs.c
    out: list[FinishedJob] = []
    for row in conn.execute(
        sa.select(
            b.account_id, b.region, b.backup_vault_name, b.state, b.start_date, b.completion_date
        )
        .where(b.completion_date >= since, b.start_date.is_not(None))
        .order_by(b.completion_date.desc())
        .limit(RECENT_JOBS_LIMIT)
    ):
        seconds = max(0.0, (row[5] - row[4]).total_seconds())
        out.append(FinishedJob("backup", row[0], row[1], row[2], row[3], seconds))
    for row in conn.execute(
        sa.select(
            r.account_id, r.region, r.backup_vault_arn, r.status, r.start_date, r.completion_date
        )
        .where(r.completion_date >= since, r.start_date.is_not(None))
        .order_by(r.completion_date.desc())
        .limit(RECENT_JOBS_LIMIT)
    ):
        seconds = max(0.0, (row[5] - row[4]).total_seconds())
        out.append(FinishedJob("restore", row[0], row[1], _vault_name(row[2]), row[3], seconds))
    return out


def vault_sizes(conn: Connection) -> list[VaultSize]:
    """Every vault with its recovery point count and the sum of their sizes."""
    v, p = vaults.c, recovery_points.c
    sizes = (
        sa.select(p.backup_vault_arn, sa.func.sum(p.backup_size_in_bytes).label("size"))
        .group_by(p.backup_vault_arn)
        .subquery()
    )
    query = sa.select(
        v.account_id, v.region, v.name, v.number_of_recovery_points, sizes.c.size
    ).select_from(vaults.outerjoin(sizes, sizes.c.backup_vault_arn == v.arn))
    return [VaultSize(r[0], r[1], r[2], int(r[3]), int(r[4] or 0)) for r in conn.execute(query)]


def class_sizes(conn: Connection) -> list[tuple[str, str, str, str, int]]:
    """``(account, region, vault, storage_class, bytes)``: the sizes of each vault's
    recovery points by storage class (WARM, COLD), one aggregate query."""
    v, p = vaults.c, recovery_points.c
    query = (
        sa.select(
            v.account_id, v.region, v.name, p.storage_class, sa.func.sum(p.backup_size_in_bytes)
        )
        .select_from(recovery_points.join(vaults, vaults.c.arn == p.backup_vault_arn))
        .group_by(v.account_id, v.region, v.name, p.storage_class)
    )
    return [(r[0], r[1], r[2], str(r[3]), int(r[4] or 0)) for r in conn.execute(query)]


def transfers(
    conn: Connection, since: datetime | None, until: datetime | None
) -> list[tuple[str, str, str, str, str | None, str, int]]:
    """``(kind, account, region, vault_arn, resource_arn, recovery_point_arn, bytes)`` of
    every restore ("restore") and copy ("copy") job that completed in ``[since, until)``
    (either bound None: open), its BytesTransferred (the cost report's restore and copy
    GB; a copy is counted in its source vault, where AWS bills the transfer)."""
    out: list[tuple[str, str, str, str, str | None, str, int]] = []
    r, c = restore_jobs.c, copy_jobs.c
    for kind, t, done, vault, resource, point, state in (
        ("restore", r, r.completion_date, r.backup_vault_arn, r.source_resource_arn,
         r.recovery_point_arn, r.status),
        ("copy", c, c.completion_date, c.source_backup_vault_arn, c.resource_arn,
         c.source_recovery_point_arn, c.state),
    ):  # fmt: skip
        query = sa.select(
            t.account_id, t.region, vault, resource, point, sa.func.coalesce(t.bytes_transferred, 0)
        ).where(state == "COMPLETED")
        if since is not None:
            query = query.where(done >= since)
        if until is not None:
            query = query.where(done < until)
        out += [(kind, a, g, v or "", res, p, int(n)) for a, g, v, res, p, n in conn.execute(query)]
    return out


def agents_seen(conn: Connection) -> list[tuple[str, str, datetime | None, datetime]]:
    """``(account, host, last_seen_at, enrolled_at)`` of every enrolled agent."""
    a = agents.c
    query = sa.select(a.account_id, a.host, a.last_seen_at, a.enrolled_at)
    return [(r[0], r[1], r[2], r[3]) for r in conn.execute(query.order_by(a.account_id, a.host))]


def resource_backups(conn: Connection) -> list[ResourceBackup]:
    """Every registered resource with the creation date of its newest COMPLETED
    recovery point (None: never backed up successfully)."""
    p, res = recovery_points.c, resources.c
    latest = (
        sa.select(p.resource_arn, sa.func.max(p.creation_date).label("latest"))
        .where(p.status == "COMPLETED")
        .group_by(p.resource_arn)
        .subquery()
    )
    query = sa.select(
        res.account_id, res.region, res.arn, res.resource_type, res.created_at, latest.c.latest
    ).select_from(resources.outerjoin(latest, latest.c.resource_arn == res.arn))
    # max() keeps the column's type, so the timestamps come back aware UTC
    return [ResourceBackup(r[0], r[1], r[2], r[3], r[4], r[5]) for r in conn.execute(query)]


def earliest_due_rule(conn: Connection) -> datetime | None:
    """The earliest ``next_run_at`` of an enabled rule: the planner is late by
    ``now - it`` when that is in the past."""
    r = backup_rules.c
    query = sa.select(sa.func.min(r.next_run_at)).where(r.enabled.is_(True))
    value: datetime | None = conn.execute(query).scalar_one_or_none()
    return value


# -- the integrity watch ---------------------------------------------------------------------

CHECKED_STATUSES = ("COMPLETED", "PARTIAL", "AVAILABLE")


@dataclass(frozen=True)
class StoredPoint:
    arn: str
    engine_id: str
    status_message: str | None


def integrity_due(conn: Connection, *, before: datetime, limit: int) -> list[str]:
    """ARNs of AVAILABLE vaults never reconciled or last reconciled before ``before``,
    least recently reconciled first."""
    v, c = vaults.c, integrity_checks.c
    query = (
        sa.select(v.arn)
        .select_from(vaults.outerjoin(integrity_checks, c.vault_arn == v.arn))
        .where(v.vault_state == "AVAILABLE", sa.or_(c.checked_at.is_(None), c.checked_at < before))
        .order_by(c.checked_at.is_not(None), c.checked_at, v.arn)
        .limit(limit)
    )
    return [str(r[0]) for r in conn.execute(query)]


def stored_points(conn: Connection, vault_arn: str) -> list[StoredPoint]:
    """The vault's finished recovery points that must have a manifest in its store."""
    p = recovery_points.c
    query = sa.select(p.arn, p.engine_recovery_point_id, p.status_message).where(
        p.backup_vault_arn == vault_arn,
        p.status.in_(CHECKED_STATUSES),
        p.engine_recovery_point_id.is_not(None),
    )
    return [StoredPoint(r[0], r[1], r[2]) for r in conn.execute(query)]


def set_point_message(conn: Connection, arn: str, message: str | None) -> bool:
    """Set a point's StatusMessage; False when the point is gone meanwhile."""
    p = recovery_points.c
    done = conn.execute(recovery_points.update().where(p.arn == arn).values(status_message=message))
    return bool(done.rowcount)


def integrity_done(conn: Connection, vault_arn: str, now: datetime, missing: int) -> None:
    c = integrity_checks.c
    updated = conn.execute(
        integrity_checks.update()
        .where(c.vault_arn == vault_arn)
        .values(checked_at=now, missing=missing)
    )
    if not updated.rowcount:
        conn.execute(
            integrity_checks.insert().values(vault_arn=vault_arn, checked_at=now, missing=missing)
        )


def checked_at(conn: Connection, vault_arn: str) -> datetime | None:
    """When the vault was last reconciled (None: never)."""
    c = integrity_checks.c
    found = conn.execute(sa.select(c.checked_at).where(c.vault_arn == vault_arn)).scalar()
    return found if isinstance(found, datetime) else None


def points_by_message(conn: Connection, prefix: str) -> list[tuple[str, str, str, int]]:
    """(account, region, vault name, count) of the recovery points whose StatusMessage
    starts with ``prefix`` (the integrity watch's DAMAGED), vaults with any only."""
    v, p = vaults.c, recovery_points.c
    query = (
        sa.select(v.account_id, v.region, v.name, sa.func.count())
        .select_from(recovery_points.join(vaults, v.arn == p.backup_vault_arn))
        .where(p.status_message.like(prefix + "%"))
        .group_by(v.account_id, v.region, v.name)
    )
    return [(r[0], r[1], r[2], int(r[3])) for r in conn.execute(query)]


def missing_manifests(conn: Connection) -> list[tuple[str, str, str, int]]:
    """(account, region, vault name, missing manifests) of every reconciled vault."""
    v, c = vaults.c, integrity_checks.c
    query = sa.select(v.account_id, v.region, v.name, c.missing).select_from(
        integrity_checks.join(vaults, vaults.c.arn == c.vault_arn)
    )
    return [(r[0], r[1], r[2], int(r[3])) for r in conn.execute(query)]
