"""Backup selections (resource assignments) and the tagged inventory they resolve against.

A selection's ``document`` is its BackupSelection as given (the model validates and
matches it); :func:`inventory` reads every resource of an account and region with its
tags in one query, so resolving many selections costs one scan.

    >>> # selections.create(conn, selection_id=sid, backup_plan_id=pid, account_id=a,
    >>> #                   region=r, name="tagged", document=doc, creation_date=now)

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
from snowvault.control.catalog.tables import backup_selections as bs
from snowvault.control.catalog.tables import resources, tags
from snowvault.core.errors import NotFound

_ORDER = pagination.Order([bs.c.creation_date, bs.c.selection_id], descending=True)


def create(
    conn: Connection,
    *,
    selection_id: str,
    backup_plan_id: str,
    account_id: str,
    region: str,
    name: str,
    document: dict[str, Any],
    creation_date: datetime,
    iam_role_arn: str | None = None,
    creator_request_id: str | None = None,
) -> Record:
    conn.execute(
        bs.insert().values(
            selection_id=selection_id,
            backup_plan_id=backup_plan_id,
            account_id=account_id,
            region=region,
            name=name,
            iam_role_arn=iam_role_arn,
            document=document,
            creator_request_id=creator_request_id,
            creation_date=creation_date,
        )
    )
    return get(conn, backup_plan_id, selection_id)


def get(conn: Connection, backup_plan_id: str, selection_id: str) -> Record:
    """One selection of one plan; NotFound otherwise."""
    stmt = sa.select(bs).where(
        bs.c.backup_plan_id == backup_plan_id, bs.c.selection_id == selection_id
    )
    row = conn.execute(stmt).first()
    if row is None:
        raise NotFound(kind="backup selection", name=selection_id)
    return dict(row._mapping)


def find_by_creator_request_id(
    conn: Connection, backup_plan_id: str, creator_request_id: str
) -> Record | None:
    stmt = sa.select(bs).where(
        bs.c.backup_plan_id == backup_plan_id, bs.c.creator_request_id == creator_request_id
    )
    row = conn.execute(stmt).first()
    return dict(row._mapping) if row else None


def list_for_plan(
    conn: Connection, backup_plan_id: str, *, limit: int | None = None, token: str | None = None
) -> pagination.Page:
    """ListBackupSelections, newest first."""
    stmt = sa.select(bs).where(bs.c.backup_plan_id == backup_plan_id)
    return pagination.paginate(
        conn, stmt, kind="selections", order=_ORDER, limit=limit, token=token
    )


def for_plans(conn: Connection, backup_plan_ids: Sequence[str]) -> list[Record]:
    """Every selection of the given plans (the planner resolves them together)."""
    if not backup_plan_ids:
        return []
    stmt = (
        sa.select(bs)
        .where(bs.c.backup_plan_id.in_(list(backup_plan_ids)))
        .order_by(bs.c.backup_plan_id, bs.c.selection_id)
    )
    return [dict(r._mapping) for r in conn.execute(stmt)]


def count_for_plan(conn: Connection, backup_plan_id: str) -> int:
    stmt = sa.select(sa.func.count()).where(bs.c.backup_plan_id == backup_plan_id)
    return int(conn.execute(stmt).scalar_one())


def delete(conn: Connection, backup_plan_id: str, selection_id: str) -> None:
    stmt = bs.delete().where(
        bs.c.backup_plan_id == backup_plan_id, bs.c.selection_id == selection_id
    )
    if conn.execute(stmt).rowcount == 0:
        raise NotFound(kind="backup selection", name=selection_id)


def inventory(conn: Connection, *, account_id: str, region: str) -> list[Record]:
    """Every resource of the account and region, by ARN: what selections match on and
    jobs need (``arn``, ``resource_type``, ``name``, ``worker_label``) and a ``tags`` dict.

    Two scans (resources, then their tags) rather than one join: a join repeats each
    resource's columns once per tag, which dominated a 10,000-resource scheduler tick."""
    scope = sa.and_(resources.c.account_id == account_id, resources.c.region == region)
    r = resources.c
    columns = sa.select(r.arn, r.resource_type, r.name, r.worker_label)
    rows = conn.execute(columns.where(scope).order_by(r.arn))
    out: dict[str, Record] = {r["arn"]: dict(r, tags={}) for r in rows.mappings().all()}
    tag_rows = sa.select(tags.c.resource_arn, tags.c.key, tags.c.value).select_from(
        tags.join(resources, tags.c.resource_arn == resources.c.arn)
    )
    for arn, key, value in conn.execute(tag_rows.where(scope)).all():  # fetchall: one call
        out[arn]["tags"][key] = value
    return list(out.values())
