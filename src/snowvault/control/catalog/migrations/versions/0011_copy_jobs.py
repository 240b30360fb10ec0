"""Copy jobs: the ``copy_jobs`` table, which is also their queue (issue 14); cold moves.

One row per copy job (StartCopyJob, or a plan rule's CopyAction after a backup of that
rule), with the columns of botocore's ``CopyJob`` shape, the progress columns and the
lease columns every job table has; and ``cold_moves``, when the cold-data sweep last
moved the packs only cold recovery points need into a vault's cold store (one row per
vault). The cost report needs no table: it reads the repositories.

Written out in full (not derived from the models) so it stays the frozen history of
revision 0011.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ARN = sa.String(length=1024)


def _ts(name: str, *, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "copy_jobs",
        sa.Column("copy_job_id", sa.String(length=36), nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("source_backup_vault_arn", _ARN, nullable=False),
        sa.Column("source_recovery_point_arn", _ARN, nullable=False),
        sa.Column("destination_backup_vault_arn", _ARN, nullable=False),
        sa.Column("destination_vault_type", sa.String(length=40), nullable=True),
        sa.Column("destination_recovery_point_arn", _ARN, nullable=False),
        sa.Column("destination_encryption_key_arn", _ARN, nullable=True),
        sa.Column(
            "destination_recovery_point_lifecycle", sa.JSON(none_as_null=True), nullable=True
        ),
        sa.Column("resource_arn", _ARN, nullable=False),
        sa.Column("resource_type", sa.String(length=64), nullable=False),
        sa.Column("resource_name", sa.String(length=255), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("status_message", sa.Text(), nullable=True),
        sa.Column("message_category", sa.String(length=64), nullable=True),
        _ts("creation_date", nullable=False),
        _ts("start_date"),
        _ts("completion_date"),
        sa.Column("percent_done", sa.Float(), nullable=True),
        sa.Column("bytes_transferred", sa.BigInteger(), nullable=True),
        sa.Column("backup_size_in_bytes", sa.BigInteger(), nullable=True),
        sa.Column("iam_role_arn", _ARN, nullable=True),
        sa.Column("idempotency_token", sa.String(length=255), nullable=True),
        sa.Column("created_by", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("created_by_backup_job_id", sa.String(length=36), nullable=True),
        sa.Column("composite_member_identifier", sa.String(length=255), nullable=True),
        sa.Column("is_parent", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("parent_job_id", sa.String(length=36), nullable=True),
        sa.Column("worker_label", sa.String(length=255), nullable=True),
        sa.Column("lease_owner", sa.String(length=255), nullable=True),
        _ts("lease_expires_at"),
        _ts("heartbeat_at"),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("max_attempts", sa.Integer(), server_default="3", nullable=False),
        sa.PrimaryKeyConstraint("copy_job_id", name=op.f("pk_copy_jobs")),
    )
    op.create_index(
        "ix_copy_jobs_account_region_creation",
        "copy_jobs",
        ["account_id", "region", "creation_date"],
        unique=False,
    )
    op.create_index(
        "ix_copy_jobs_state_creation", "copy_jobs", ["state", "creation_date"], unique=False
    )
    op.create_index(
        "ix_copy_jobs_source_point", "copy_jobs", ["source_recovery_point_arn"], unique=False
    )
    op.create_index(
        "ix_copy_jobs_destination_vault",
        "copy_jobs",
        ["destination_backup_vault_arn"],
        unique=False,
    )
    op.create_index(
        "ix_copy_jobs_lease_expires_at", "copy_jobs", ["lease_expires_at"], unique=False
    )
    op.create_index(
        op.f("ix_copy_jobs_parent_job_id"), "copy_jobs", ["parent_job_id"], unique=False
    )
    op.create_table(
        "cold_moves",
        sa.Column("vault_arn", _ARN, nullable=False),
        _ts("moved_at", nullable=False),
        sa.PrimaryKeyConstraint("vault_arn", name=op.f("pk_cold_moves")),
    )


def downgrade() -> None:
    op.drop_table("cold_moves")
    for name in (
        "ix_copy_jobs_parent_job_id",
        "ix_copy_jobs_lease_expires_at",
        "ix_copy_jobs_destination_vault",
        "ix_copy_jobs_source_point",
        "ix_copy_jobs_state_creation",
        "ix_copy_jobs_account_region_creation",
    ):
        op.drop_index(name, table_name="copy_jobs")
    op.drop_table("copy_jobs")
