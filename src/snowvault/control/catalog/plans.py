"""Backup plans: create, versions, current rules, list, delete (soft: the row stays).

A plan row points at its current version; every version's document stays readable in
``backup_plan_versions``. The current version's rules are also kept flat in
``backup_rules`` for the planner; :func:`sync_rules` keeps a rule's id and scheduling
progress while its name stays the same.

    >>> # plans.create(conn, backup_plan_id=pid, arn=arn, account_id=a, region=r,
    >>> #              name="daily", version_id=v, document=doc, creation_date=now)

Must not depend on anything above ``snowvault.core``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from snowvault.control.catalog import pagination
from snowvault.control.catalog.db import Record
from snowvault.control.catalog.tables import backup_plan_versions as bv
from snowvault.control.catalog.tables import backup_plans as bp
from snowvault.control.catalog.tables import backup_rules as br
from snowvault.core.errors import NotFound

# ListBackupPlans answers in creation order, oldest first, as AWS does (the id only
# breaks ties between plans made in the same microsecond).
_PLAN_ORDER = pagination.Order([bp.c.creation_date, bp.c.backup_plan_id])
_VERSION_ORDER = pagination.Order([bv.c.creation_date, bv.c.version_id], descending=True)


def create(
    conn: Connection,
    *,
    backup_plan_id: str,
    arn: str,
    account_id: str,
    region: str,
    name: str,
    version_id: str,
    document: dict[str, Any],
    creation_date: datetime,
    creator_request_id: str | None = None,
    advanced_backup_settings: list[dict[str, Any]] | None = None,
) -> Record:
    """Insert a plan and its first version."""
    conn.execute(
        bp.insert().values(
            backup_plan_id=backup_plan_id,
            arn=arn,
            account_id=account_id,
            region=region,
            name=name,
            version_id=version_id,
            creator_request_id=creator_request_id,
            advanced_backup_settings=advanced_backup_settings,
            creation_date=creation_date,
        )
    )
    add_version(
        conn,
        backup_plan_id,
        version_id=version_id,
        name=name,
        document=document,
        creation_date=creation_date,
        advanced_backup_settings=advanced_backup_settings,
    )
    return get(conn, backup_plan_id)


def add_version(
    conn: Connection,
    backup_plan_id: str,
    *,
    version_id: str,
    name: str,
    document: dict[str, Any],
    creation_date: datetime,
    advanced_backup_settings: list[dict[str, Any]] | None = None,
) -> None:
    """Store a new version and make it the plan's current one."""
    conn.execute(
        bv.insert().values(
            backup_plan_id=backup_plan_id,
            version_id=version_id,
            name=name,
            document=document,
            advanced_backup_settings=advanced_backup_settings,
            creation_date=creation_date,
        )
    )
    conn.execute(
        bp.update()
        .where(bp.c.backup_plan_id == backup_plan_id)
        .values(version_id=version_id, name=name, advanced_backup_settings=advanced_backup_settings)
    )


def find(conn: Connection, backup_plan_id: str) -> Record | None:
    row = conn.execute(sa.select(bp).where(bp.c.backup_plan_id == backup_plan_id)).first()
    return dict(row._mapping) if row else None


def get(conn: Connection, backup_plan_id: str, *, account_id: str | None = None) -> Record:
    """The plan row; NotFound if absent or (with ``account_id``) another account's."""
    row = find(conn, backup_plan_id)
    if row is None or (account_id is not None and row["account_id"] != account_id):
        raise NotFound(kind="backup plan", name=backup_plan_id)
    return row


def find_by_creator_request_id(
    conn: Connection, *, account_id: str, region: str, creator_request_id: str
) -> Record | None:
    stmt = sa.select(bp).where(
        bp.c.account_id == account_id,
        bp.c.region == region,
        bp.c.creator_request_id == creator_request_id,
        bp.c.deletion_date.is_(None),
    )
    row = conn.execute(stmt).first()
    return dict(row._mapping) if row else None


def current_documents(conn: Connection, *, account_id: str, region: str) -> list[Record]:
    """The live plans of an account and region with their current version's document:
    rows of the plan plus ``document``."""
    stmt = (
        sa.select(bp, bv.c.document)
        .join(
            bv,
            sa.and_(bv.c.backup_plan_id == bp.c.backup_plan_id, bv.c.version_id == bp.c.version_id),
        )
        .where(bp.c.account_id == account_id, bp.c.region == region, bp.c.deletion_date.is_(None))
        .order_by(bp.c.creation_date, bp.c.backup_plan_id)
    )
    return [dict(r._mapping) for r in conn.execute(stmt)]


def latest_creation(conn: Connection, *, account_id: str, region: str) -> datetime | None:
    """The newest plan creation date of an account and region (deleted plans included)."""
    stmt = (
        sa.select(bp.c.creation_date)
        .where(bp.c.account_id == account_id, bp.c.region == region)
        .order_by(bp.c.creation_date.desc())
        .limit(1)
    )
    value: datetime | None = conn.execute(stmt).scalar()
    return value


def get_version(conn: Connection, backup_plan_id: str, version_id: str) -> Record:
    """One version's row (document, name, creation date); NotFound if unknown."""
    stmt = sa.select(bv).where(bv.c.backup_plan_id == backup_plan_id, bv.c.version_id == version_id)
    row = conn.execute(stmt).first()
    if row is None:
        raise NotFound(kind="backup plan version", name=f"{backup_plan_id}/{version_id}")
    return dict(row._mapping)


def list_plans(
    conn: Connection,
    *,
    account_id: str,
    region: str,
    include_deleted: bool = False,
    limit: int | None = None,
    token: str | None = None,
) -> pagination.Page:
    """ListBackupPlans, in creation order (oldest first)."""
    stmt = sa.select(bp).where(bp.c.account_id == account_id, bp.c.region == region)
    if not include_deleted:
        stmt = stmt.where(bp.c.deletion_date.is_(None))
    return pagination.paginate(
        conn, stmt, kind="backup-plans", order=_PLAN_ORDER, limit=limit, token=token
    )


def list_versions(
    conn: Connection, backup_plan_id: str, *, limit: int | None = None, token: str | None = None
) -> pagination.Page:
    """ListBackupPlanVersions, newest first; rows carry the plan's arn and deletion date."""
    stmt = (
        sa.select(bv, bp.c.arn, bp.c.deletion_date, bp.c.creator_request_id)
        .join(bp, bp.c.backup_plan_id == bv.c.backup_plan_id)
        .where(bv.c.backup_plan_id == backup_plan_id)
    )
    return pagination.paginate(
        conn, stmt, kind="plan-versions", order=_VERSION_ORDER, limit=limit, token=token
    )


def mark_deleted(conn: Connection, backup_plan_id: str, *, deletion_date: datetime) -> Record:
    """DeleteBackupPlan: stamp the deletion date and drop the rules (no more jobs)."""
    conn.execute(
        bp.update().where(bp.c.backup_plan_id == backup_plan_id).values(deletion_date=deletion_date)
    )
    conn.execute(br.delete().where(br.c.backup_plan_id == backup_plan_id))
    return get(conn, backup_plan_id)


def record_execution(conn: Connection, backup_plan_id: str, when: datetime) -> None:
    """LastExecutionDate: the latest time the planner created jobs for this plan."""
    newer = sa.or_(bp.c.last_execution_date.is_(None), bp.c.last_execution_date < when)
    conn.execute(
        bp.update()
        .where(bp.c.backup_plan_id == backup_plan_id, newer)
        .values(last_execution_date=when)
    )


# --- current rules -------------------------------------------------------------------


def rule_ids_by_name(conn: Connection, backup_plan_id: str) -> dict[str, str]:
    """The current rules' ids, by rule name."""
    stmt = sa.select(br.c.rule_name, br.c.rule_id).where(br.c.backup_plan_id == backup_plan_id)
    return {r.rule_name: r.rule_id for r in conn.execute(stmt)}


def list_rules(conn: Connection, backup_plan_id: str) -> list[Record]:
    stmt = sa.select(br).where(br.c.backup_plan_id == backup_plan_id).order_by(br.c.rule_name)
    return [dict(r._mapping) for r in conn.execute(stmt)]


def sync_rules(
    conn: Connection, backup_plan_id: str, rules: Sequence[Record], *, now: datetime
) -> list[Record]:
    """Make ``backup_rules`` hold exactly ``rules`` (dicts of its columns, without
    ``planned_until`` and ``next_run_at``) and return them as stored.

    A rule already present (same rule_id) keeps its planning progress, so an update never
    plans an occurrence twice; a new one starts planning at ``now`` (nothing earlier is
    backfilled). The caller then sets each rule's ``next_run_at`` (:func:`set_next_run`).
    """
    existing = {r["rule_id"]: r for r in list_rules(conn, backup_plan_id)}
    wanted = {r["rule_id"] for r in rules}
    gone = [rid for rid in existing if rid not in wanted]
    if gone:
        conn.execute(br.delete().where(br.c.rule_id.in_(gone)))
    for rule in rules:
        values = dict(rule, backup_plan_id=backup_plan_id)
        if rule["rule_id"] in existing:
            conn.execute(br.update().where(br.c.rule_id == rule["rule_id"]).values(**values))
        else:
            conn.execute(br.insert().values(planned_until=now, **values))
    return list_rules(conn, backup_plan_id)


def set_next_run(conn: Connection, rule_id: str, next_run_at: datetime | None) -> None:
    conn.execute(br.update().where(br.c.rule_id == rule_id).values(next_run_at=next_run_at))
