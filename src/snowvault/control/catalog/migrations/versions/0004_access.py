"""Vault Lock creation times and legal holds (the access issue).

Written out in full (not derived from the models) so it stays the frozen history of
revision 0004.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "vault_locks",
        sa.Column("vault_arn", sa.String(length=1024), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["vault_arn"],
            ["vaults.arn"],
            name=op.f("fk_vault_locks_vault_arn_vaults"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("vault_arn", name=op.f("pk_vault_locks")),
    )
    op.create_table(
        "legal_holds",
        sa.Column("legal_hold_id", sa.String(length=36), nullable=False),
        sa.Column("legal_hold_arn", sa.String(length=1024), nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("title", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("selection", sa.JSON(none_as_null=True), nullable=False),
        sa.Column("idempotency_token", sa.String(length=255), nullable=True),
        sa.Column("creation_date", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cancellation_date", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancel_description", sa.Text(), nullable=True),
        sa.Column("retain_record_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("legal_hold_id", name=op.f("pk_legal_holds")),
    )
    op.create_index(
        "ix_legal_holds_account_region_status",
        "legal_holds",
        ["account_id", "region", "status"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_legal_holds_account_region_status", table_name="legal_holds")
    op.drop_table("legal_holds")
    op.drop_table("vault_locks")
