"""Continuous recovery points: named queries over ``continuous_points`` and
``continuous_pieces`` (revision 0009).

A recovery point is CONTINUOUS exactly when it has a ``continuous_points`` row (at most
one per resource and vault); its chain of engine recovery points (base backups, WAL,
the current partial segment) are its ``continuous_pieces``.

    with catalog.db.transaction(engine) as conn:
        point = continuous.find_for(conn, resource_arn, vault_arn)
        continuous.add_piece(conn, point.recovery_point_arn, piece, now=now)

Must not depend on anything above ``snowvault.core`` (and the model's records).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from snowvault.control.catalog.tables import continuous_pieces as pieces_t
from snowvault.control.catalog.tables import continuous_points as points_t
from snowvault.control.model import continuous as rules


@dataclass(frozen=True)
class ContinuousPoint:
    """A ``continuous_points`` row."""

    recovery_point_arn: str
    resource_arn: str
    backup_vault_arn: str
    rule_id: str | None
    slot_name: str
    retention_days: int
    earliest: datetime | None
    latest: datetime | None
    last_base_at: datetime | None
    next_base_at: datetime | None
    shipped_lsn: int | None
    gap_message: str | None
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Any) -> ContinuousPoint:
        m = row._mapping
        return cls(**{f.name: m[f.name] for f in fields(cls)})

    @property
    def window(self) -> rules.Window | None:
        if self.earliest is None or self.latest is None:
            return None
        return rules.Window(self.earliest, self.latest)


def _piece(row: Any) -> rules.Piece:
    m = row._mapping
    return rules.Piece(**{f.name: m[f.name] for f in fields(rules.Piece)})


def create(
    conn: Connection,
    *,
    recovery_point_arn: str,
    resource_arn: str,
    backup_vault_arn: str,
    rule_id: str | None,
    slot_name: str,
    retention_days: int,
    now: datetime,
) -> ContinuousPoint:
    conn.execute(
        points_t.insert().values(
            recovery_point_arn=recovery_point_arn,
            resource_arn=resource_arn,
            backup_vault_arn=backup_vault_arn,
            rule_id=rule_id,
            slot_name=slot_name,
            retention_days=retention_days,
            updated_at=now,
        )
    )
    found = find(conn, recovery_point_arn)
    assert found is not None
    return found


def find(conn: Connection, recovery_point_arn: str) -> ContinuousPoint | None:
    """The continuous point of this recovery point ARN; None: not a continuous point."""
    stmt = sa.select(points_t).where(points_t.c.recovery_point_arn == recovery_point_arn)
    row = conn.execute(stmt).first()
    return ContinuousPoint.from_row(row) if row else None


def find_for(conn: Connection, resource_arn: str, vault_arn: str) -> ContinuousPoint | None:
    """The one continuous point of ``resource_arn`` in ``vault_arn``, if any."""
    stmt = sa.select(points_t).where(
        points_t.c.resource_arn == resource_arn, points_t.c.backup_vault_arn == vault_arn
    )
    row = conn.execute(stmt).first()
    return ContinuousPoint.from_row(row) if row else None


def list_points(conn: Connection) -> list[ContinuousPoint]:
    stmt = sa.select(points_t).order_by(points_t.c.recovery_point_arn)
    return [ContinuousPoint.from_row(r) for r in conn.execute(stmt)]


def update(conn: Connection, recovery_point_arn: str, *, now: datetime, **values: Any) -> None:
    """Set columns of the point (``earliest``, ``latest``, ``next_base_at``, ...)."""
    allowed = {c.name for c in points_t.c} - {"recovery_point_arn", "updated_at"}
    unknown = set(values) - allowed
    if unknown:
        raise ValueError(f"not continuous_points columns: {sorted(unknown)}")
    conn.execute(
        points_t.update()
        .where(points_t.c.recovery_point_arn == recovery_point_arn)
        .values(updated_at=now, **values)
    )


def pieces(conn: Connection, recovery_point_arn: str) -> list[rules.Piece]:
    """Every piece of the point's chain, in LSN order."""
    stmt = (
        sa.select(pieces_t)
        .where(pieces_t.c.recovery_point_arn == recovery_point_arn)
        .order_by(pieces_t.c.timeline, pieces_t.c.begin_lsn, pieces_t.c.engine_id)
    )
    return [_piece(r) for r in conn.execute(stmt)]


def add_piece(
    conn: Connection, recovery_point_arn: str, piece: rules.Piece, *, now: datetime
) -> None:
    values = {f.name: getattr(piece, f.name) for f in fields(rules.Piece)}
    conn.execute(
        pieces_t.insert().values(recovery_point_arn=recovery_point_arn, created_at=now, **values)
    )


def drop_pieces(conn: Connection, recovery_point_arn: str, engine_ids: Iterable[str]) -> None:
    ids = list(engine_ids)
    if ids:
        conn.execute(
            pieces_t.delete().where(
                pieces_t.c.recovery_point_arn == recovery_point_arn,
                pieces_t.c.engine_id.in_(ids),
            )
        )


def shipped_names(conn: Connection, recovery_point_arn: str) -> set[str]:
    """The names of the completed WAL files already in the vault."""
    stmt = sa.select(pieces_t.c.name).where(
        pieces_t.c.recovery_point_arn == recovery_point_arn, pieces_t.c.kind == rules.WAL
    )
    return {r[0] for r in conn.execute(stmt)}


def delete(conn: Connection, recovery_point_arn: str) -> list[str]:
    """Forget the point's continuous rows; returns its pieces' engine ids (for the
    caller to forget in the vault)."""
    ids = [p.engine_id for p in pieces(conn, recovery_point_arn)]
    conn.execute(pieces_t.delete().where(pieces_t.c.recovery_point_arn == recovery_point_arn))
    conn.execute(points_t.delete().where(points_t.c.recovery_point_arn == recovery_point_arn))
    return ids


def engine_ids(conn: Connection, recovery_point_arn: str) -> Sequence[str]:
    return [p.engine_id for p in pieces(conn, recovery_point_arn)]
