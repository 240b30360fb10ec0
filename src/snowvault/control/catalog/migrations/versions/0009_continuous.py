"""Continuous recovery points: the restorable window and the chain of base backups and
WAL that makes it (PostgreSQL point-in-time restore, issue 11).

- ``continuous_points``: one row per CONTINUOUS recovery point (at most one per resource
  and vault), its rule, replication slot, retention and restorable window.
- ``continuous_pieces``: the engine recovery points of its chain (base backups, completed
  WAL files, the current partial segment) with their LSN range and times.

Written out in full (not derived from the models) so it stays the frozen history of
revision 0009.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ARN = sa.String(length=1024)


def _ts(name: str, *, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "continuous_points",
        sa.Column("recovery_point_arn", _ARN, nullable=False),
        sa.Column("resource_arn", _ARN, nullable=False),
        sa.Column("backup_vault_arn", _ARN, nullable=False),
        sa.Column("rule_id", sa.String(length=36), nullable=True),
        sa.Column("slot_name", sa.String(length=63), nullable=False),
        sa.Column("retention_days", sa.Integer(), nullable=False),
        _ts("earliest"),
        _ts("latest"),
        _ts("last_base_at"),
        _ts("next_base_at"),
        sa.Column("shipped_lsn", sa.BigInteger(), nullable=True),
        sa.Column("gap_message", sa.Text(), nullable=True),
        _ts("updated_at", nullable=False),
        sa.ForeignKeyConstraint(
            ["recovery_point_arn"],
            ["recovery_points.arn"],
            name=op.f("fk_continuous_points_recovery_point_arn_recovery_points"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("recovery_point_arn", name=op.f("pk_continuous_points")),
        sa.UniqueConstraint(
            "resource_arn",
            "backup_vault_arn",
            name=op.f("uq_continuous_points_resource_arn_backup_vault_arn"),
        ),
    )
    op.create_table(
        "continuous_pieces",
        sa.Column("recovery_point_arn", _ARN, nullable=False),
        sa.Column("engine_id", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("timeline", sa.Integer(), nullable=False),
        sa.Column("begin_lsn", sa.BigInteger(), nullable=False),
        sa.Column("end_lsn", sa.BigInteger(), nullable=False),
        _ts("begin_time"),
        _ts("end_time"),
        sa.Column("size", sa.BigInteger(), server_default="0", nullable=False),
        _ts("created_at", nullable=False),
        sa.ForeignKeyConstraint(
            ["recovery_point_arn"],
            ["continuous_points.recovery_point_arn"],
            name=op.f("fk_continuous_pieces_recovery_point_arn_continuous_points"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "recovery_point_arn", "engine_id", name=op.f("pk_continuous_pieces")
        ),
    )
    op.create_index(
        "ix_continuous_pieces_point_kind_end",
        "continuous_pieces",
        ["recovery_point_arn", "kind", "end_lsn"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_continuous_pieces_point_kind_end", table_name="continuous_pieces")
    op.drop_table("continuous_pieces")
    op.drop_table("continuous_points")
