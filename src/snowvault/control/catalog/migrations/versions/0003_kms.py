"""KMS keys, key versions (sealed material) and aliases (the keys issue).

Written out in full (not derived from the models) so it stays the frozen history of
revision 0003.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ARN = sa.String(length=1024)


def upgrade() -> None:
    op.create_table(
        "kms_keys",
        sa.Column("arn", _ARN, nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("key_usage", sa.String(length=32), nullable=False),
        sa.Column("key_spec", sa.String(length=32), nullable=False),
        sa.Column("origin", sa.String(length=32), nullable=False),
        sa.Column("key_manager", sa.String(length=16), nullable=False),
        sa.Column("key_state", sa.String(length=16), nullable=False),
        sa.Column("creation_date", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deletion_date", sa.DateTime(timezone=True), nullable=True),
        sa.Column("pending_window_days", sa.Integer(), nullable=True),
        sa.Column("rotation_enabled", sa.Boolean(), nullable=False),
        sa.Column("rotation_period_days", sa.Integer(), nullable=True),
        sa.Column("next_rotation_date", sa.DateTime(timezone=True), nullable=True),
        sa.Column("on_demand_rotation_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("current_version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("arn", name=op.f("pk_kms_keys")),
        sa.UniqueConstraint("key_id", name=op.f("uq_kms_keys_key_id")),
    )
    op.create_index(
        "ix_kms_keys_account_region_creation",
        "kms_keys",
        ["account_id", "region", "creation_date"],
        unique=False,
    )
    op.create_index("ix_kms_keys_deletion_date", "kms_keys", ["deletion_date"], unique=False)
    op.create_index(
        "ix_kms_keys_next_rotation_date", "kms_keys", ["next_rotation_date"], unique=False
    )
    op.create_table(
        "kms_key_versions",
        sa.Column("key_arn", _ARN, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("sealed_material", sa.LargeBinary(), nullable=False),
        sa.Column("rotation_type", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["key_arn"],
            ["kms_keys.arn"],
            name=op.f("fk_kms_key_versions_key_arn_kms_keys"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("key_arn", "version", name=op.f("pk_kms_key_versions")),
    )
    op.create_table(
        "kms_aliases",
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("alias_name", sa.String(length=256), nullable=False),
        sa.Column("target_key_arn", _ARN, nullable=False),
        sa.Column("creation_date", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_updated_date", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["target_key_arn"],
            ["kms_keys.arn"],
            name=op.f("fk_kms_aliases_target_key_arn_kms_keys"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account_id", "region", "alias_name", name=op.f("pk_kms_aliases")),
    )
    op.create_index(
        "ix_kms_aliases_target_key_arn", "kms_aliases", ["target_key_arn"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_kms_aliases_target_key_arn", table_name="kms_aliases")
    op.drop_table("kms_aliases")
    op.drop_table("kms_key_versions")
    op.drop_index("ix_kms_keys_next_rotation_date", table_name="kms_keys")
    op.drop_index("ix_kms_keys_deletion_date", table_name="kms_keys")
    op.drop_index("ix_kms_keys_account_region_creation", table_name="kms_keys")
    op.drop_table("kms_keys")
