"""The initial catalog schema: identities, vaults, tags, resources, jobs, recovery points.

Written out in full (not derived from tables.py) so it stays the frozen history of
revision 0001; plans and selections arrive in 0002.

Revision ID: 0001
Revises: (none)
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("email", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_accounts")),
    )
    op.create_table(
        "backup_jobs",
        sa.Column("job_id", sa.String(length=36), nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("backup_vault_name", sa.String(length=64), nullable=False),
        sa.Column("backup_vault_arn", sa.String(length=1024), nullable=False),
        sa.Column("vault_type", sa.String(length=40), nullable=True),
        sa.Column("resource_arn", sa.String(length=1024), nullable=False),
        sa.Column("resource_type", sa.String(length=64), nullable=False),
        sa.Column("resource_name", sa.String(length=255), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("status_message", sa.Text(), nullable=True),
        sa.Column("message_category", sa.String(length=64), nullable=True),
        sa.Column("creation_date", sa.DateTime(timezone=True), nullable=False),
        sa.Column("initiation_date", sa.DateTime(timezone=True), nullable=True),
        sa.Column("start_date", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completion_date", sa.DateTime(timezone=True), nullable=True),
        sa.Column("start_by", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expected_completion_date", sa.DateTime(timezone=True), nullable=True),
        sa.Column("percent_done", sa.Float(), nullable=True),
        sa.Column("bytes_transferred", sa.BigInteger(), nullable=True),
        sa.Column("backup_size_in_bytes", sa.BigInteger(), nullable=True),
        sa.Column("iam_role_arn", sa.String(length=1024), nullable=True),
        sa.Column("idempotency_token", sa.String(length=255), nullable=True),
        sa.Column("backup_type", sa.String(length=32), nullable=True),
        sa.Column("backup_plan_id", sa.String(length=255), nullable=True),
        sa.Column("backup_plan_arn", sa.String(length=1024), nullable=True),
        sa.Column("backup_plan_version", sa.String(length=255), nullable=True),
        sa.Column("backup_rule_id", sa.String(length=255), nullable=True),
        sa.Column("created_by", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("lifecycle", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("recovery_point_tags", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("backup_options", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("recovery_point_arn", sa.String(length=1024), nullable=True),
        sa.Column("encryption_key_arn", sa.String(length=1024), nullable=True),
        sa.Column("is_encrypted", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("is_parent", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("parent_job_id", sa.String(length=36), nullable=True),
        sa.Column("worker_label", sa.String(length=255), nullable=True),
        sa.Column("lease_owner", sa.String(length=255), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("max_attempts", sa.Integer(), server_default="3", nullable=False),
        sa.PrimaryKeyConstraint("job_id", name=op.f("pk_backup_jobs")),
    )
    op.create_index(
        "ix_backup_jobs_account_region_creation",
        "backup_jobs",
        ["account_id", "region", "creation_date"],
        unique=False,
    )
    op.create_index(
        "ix_backup_jobs_lease_expires_at", "backup_jobs", ["lease_expires_at"], unique=False
    )
    op.create_index(
        op.f("ix_backup_jobs_parent_job_id"), "backup_jobs", ["parent_job_id"], unique=False
    )
    op.create_index(
        "ix_backup_jobs_resource_creation",
        "backup_jobs",
        ["resource_arn", "creation_date"],
        unique=False,
    )
    op.create_index(
        "ix_backup_jobs_state_creation", "backup_jobs", ["state", "creation_date"], unique=False
    )
    op.create_index(
        "uq_backup_jobs_one_running_per_resource",
        "backup_jobs",
        ["resource_arn"],
        unique=True,
        sqlite_where=sa.text("state IN ('RUNNING', 'ABORTING')"),
        postgresql_where=sa.text("state IN ('RUNNING', 'ABORTING')"),
    )

    op.create_table(
        "idempotency",
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("operation", sa.String(length=64), nullable=False),
        sa.Column("token", sa.String(length=255), nullable=False),
        sa.Column("result", sa.JSON(none_as_null=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "operation", "token", name=op.f("pk_idempotency")),
    )
    op.create_index(op.f("ix_idempotency_created_at"), "idempotency", ["created_at"], unique=False)

    op.create_table(
        "restore_jobs",
        sa.Column("restore_job_id", sa.String(length=36), nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("recovery_point_arn", sa.String(length=1024), nullable=False),
        sa.Column("backup_vault_arn", sa.String(length=1024), nullable=True),
        sa.Column("source_resource_arn", sa.String(length=1024), nullable=True),
        sa.Column("resource_type", sa.String(length=64), nullable=True),
        sa.Column("metadata", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("iam_role_arn", sa.String(length=1024), nullable=True),
        sa.Column("idempotency_token", sa.String(length=255), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("status_message", sa.Text(), nullable=True),
        sa.Column("creation_date", sa.DateTime(timezone=True), nullable=False),
        sa.Column("start_date", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completion_date", sa.DateTime(timezone=True), nullable=True),
        sa.Column("recovery_point_creation_date", sa.DateTime(timezone=True), nullable=True),
        sa.Column("percent_done", sa.Float(), nullable=True),
        sa.Column("bytes_transferred", sa.BigInteger(), nullable=True),
        sa.Column("backup_size_in_bytes", sa.BigInteger(), nullable=True),
        sa.Column("expected_completion_time_minutes", sa.BigInteger(), nullable=True),
        sa.Column("created_resource_arn", sa.String(length=1024), nullable=True),
        sa.Column("created_by", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("validation_status", sa.String(length=16), nullable=True),
        sa.Column("validation_status_message", sa.Text(), nullable=True),
        sa.Column("deletion_status", sa.String(length=16), nullable=True),
        sa.Column("deletion_status_message", sa.Text(), nullable=True),
        sa.Column("is_parent", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("parent_job_id", sa.String(length=36), nullable=True),
        sa.Column("worker_label", sa.String(length=255), nullable=True),
        sa.Column("lease_owner", sa.String(length=255), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("max_attempts", sa.Integer(), server_default="3", nullable=False),
        sa.PrimaryKeyConstraint("restore_job_id", name=op.f("pk_restore_jobs")),
    )
    op.create_index(
        "ix_restore_jobs_account_region_creation",
        "restore_jobs",
        ["account_id", "region", "creation_date"],
        unique=False,
    )
    op.create_index(
        "ix_restore_jobs_lease_expires_at", "restore_jobs", ["lease_expires_at"], unique=False
    )
    op.create_index(
        op.f("ix_restore_jobs_parent_job_id"), "restore_jobs", ["parent_job_id"], unique=False
    )
    op.create_index(
        "ix_restore_jobs_source_creation",
        "restore_jobs",
        ["source_resource_arn", "creation_date"],
        unique=False,
    )
    op.create_index(
        "ix_restore_jobs_status_creation", "restore_jobs", ["status", "creation_date"], unique=False
    )

    op.create_table(
        "settings",
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("value", sa.JSON(none_as_null=True), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_settings")),
    )
    op.create_table(
        "tags",
        sa.Column("resource_arn", sa.String(length=1024), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("value", sa.String(length=256), nullable=False),
        sa.PrimaryKeyConstraint("resource_arn", "key", name=op.f("pk_tags")),
    )
    op.create_index("ix_tags_key_value", "tags", ["key", "value"], unique=False)

    op.create_table(
        "principals",
        sa.Column("arn", sa.String(length=1024), nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("path", sa.String(length=512), server_default="/", nullable=False),
        sa.Column("is_root", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.account_id"], name=op.f("fk_principals_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("arn", name=op.f("pk_principals")),
        sa.UniqueConstraint("account_id", "name", name=op.f("uq_principals_account_id_name")),
    )
    op.create_table(
        "region_settings",
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("resource_type_opt_in_preference", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("resource_type_management_preference", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.account_id"],
            name=op.f("fk_region_settings_account_id_accounts"),
        ),
        sa.PrimaryKeyConstraint("account_id", "region", name=op.f("pk_region_settings")),
    )
    op.create_table(
        "resources",
        sa.Column("arn", sa.String(length=1024), nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("resource_type", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("source", sa.Text(), nullable=True),
        sa.Column("worker_label", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_backup_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_backup_vault_arn", sa.String(length=1024), nullable=True),
        sa.Column("last_recovery_point_arn", sa.String(length=1024), nullable=True),
        sa.Column("latest_restore_execution_time_minutes", sa.BigInteger(), nullable=True),
        sa.Column("latest_restore_job_creation_date", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "latest_restore_recovery_point_creation_date", sa.DateTime(timezone=True), nullable=True
        ),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.account_id"], name=op.f("fk_resources_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("arn", name=op.f("pk_resources")),
    )
    op.create_index(
        "ix_resources_account_region_arn",
        "resources",
        ["account_id", "region", "arn"],
        unique=False,
    )

    op.create_table(
        "vaults",
        sa.Column("arn", sa.String(length=1024), nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column(
            "vault_type", sa.String(length=40), server_default="BACKUP_VAULT", nullable=False
        ),
        sa.Column("vault_state", sa.String(length=16), server_default="AVAILABLE", nullable=False),
        sa.Column("creation_date", sa.DateTime(timezone=True), nullable=False),
        sa.Column("encryption_key_arn", sa.String(length=1024), nullable=True),
        sa.Column("encryption_key_type", sa.String(length=32), nullable=True),
        sa.Column("creator_request_id", sa.String(length=255), nullable=True),
        sa.Column("source_backup_vault_arn", sa.String(length=1024), nullable=True),
        sa.Column("storage_url", sa.Text(), nullable=False),
        sa.Column("repository_id", sa.String(length=128), nullable=True),
        sa.Column("sealed_repository_secret", sa.LargeBinary(), nullable=True),
        sa.Column("access_policy", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("notifications", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("locked", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("min_retention_days", sa.Integer(), nullable=True),
        sa.Column("max_retention_days", sa.Integer(), nullable=True),
        sa.Column("changeable_for_days", sa.Integer(), nullable=True),
        sa.Column("lock_date", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.account_id"], name=op.f("fk_vaults_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("arn", name=op.f("pk_vaults")),
        sa.UniqueConstraint(
            "account_id", "region", "name", name=op.f("uq_vaults_account_id_region_name")
        ),
    )
    op.create_table(
        "access_keys",
        sa.Column("access_key_id", sa.String(length=128), nullable=False),
        sa.Column("principal_arn", sa.String(length=1024), nullable=False),
        sa.Column("sealed_secret", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="Active", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["principal_arn"],
            ["principals.arn"],
            name=op.f("fk_access_keys_principal_arn_principals"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("access_key_id", name=op.f("pk_access_keys")),
    )
    op.create_index(
        op.f("ix_access_keys_principal_arn"), "access_keys", ["principal_arn"], unique=False
    )

    op.create_table(
        "recovery_points",
        sa.Column("arn", sa.String(length=1024), nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("backup_vault_name", sa.String(length=64), nullable=False),
        sa.Column("backup_vault_arn", sa.String(length=1024), nullable=False),
        sa.Column("source_backup_vault_arn", sa.String(length=1024), nullable=True),
        sa.Column("vault_type", sa.String(length=40), nullable=True),
        sa.Column("engine_recovery_point_id", sa.String(length=128), nullable=True),
        sa.Column("resource_arn", sa.String(length=1024), nullable=False),
        sa.Column("resource_type", sa.String(length=64), nullable=False),
        sa.Column("resource_name", sa.String(length=255), nullable=True),
        sa.Column("source_job_id", sa.String(length=36), nullable=True),
        sa.Column("iam_role_arn", sa.String(length=1024), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("status_message", sa.Text(), nullable=True),
        sa.Column("storage_class", sa.String(length=16), server_default="WARM", nullable=False),
        sa.Column("creation_date", sa.DateTime(timezone=True), nullable=False),
        sa.Column("initiation_date", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completion_date", sa.DateTime(timezone=True), nullable=True),
        sa.Column("backup_size_in_bytes", sa.BigInteger(), nullable=True),
        sa.Column("lifecycle", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("move_to_cold_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delete_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("is_encrypted", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("encryption_key_arn", sa.String(length=1024), nullable=True),
        sa.Column("encryption_key_type", sa.String(length=32), nullable=True),
        sa.Column("parent_recovery_point_arn", sa.String(length=1024), nullable=True),
        sa.Column("is_parent", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("composite_member_identifier", sa.String(length=255), nullable=True),
        sa.Column("last_restore_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("backup_plan_id", sa.String(length=255), nullable=True),
        sa.Column("created_by", sa.JSON(none_as_null=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["backup_vault_arn"],
            ["vaults.arn"],
            name=op.f("fk_recovery_points_backup_vault_arn_vaults"),
        ),
        sa.PrimaryKeyConstraint("arn", name=op.f("pk_recovery_points")),
    )
    op.create_index(
        op.f("ix_recovery_points_delete_at"), "recovery_points", ["delete_at"], unique=False
    )
    op.create_index(
        op.f("ix_recovery_points_move_to_cold_at"),
        "recovery_points",
        ["move_to_cold_at"],
        unique=False,
    )
    op.create_index(
        "ix_recovery_points_parent", "recovery_points", ["parent_recovery_point_arn"], unique=False
    )
    op.create_index(
        "ix_recovery_points_resource_creation",
        "recovery_points",
        ["resource_arn", "creation_date", "arn"],
        unique=False,
    )
    op.create_index(
        "ix_recovery_points_vault_creation",
        "recovery_points",
        ["backup_vault_arn", "creation_date", "arn"],
        unique=False,
    )

    op.create_table(
        "user_policies",
        sa.Column("principal_arn", sa.String(length=1024), nullable=False),
        sa.Column("policy_name", sa.String(length=128), nullable=False),
        sa.Column("document", sa.JSON(none_as_null=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["principal_arn"],
            ["principals.arn"],
            name=op.f("fk_user_policies_principal_arn_principals"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("principal_arn", "policy_name", name=op.f("pk_user_policies")),
    )


def downgrade() -> None:
    op.drop_table("user_policies")
    op.drop_table("recovery_points")
    op.drop_table("access_keys")
    op.drop_table("vaults")
    op.drop_table("resources")
    op.drop_table("region_settings")
    op.drop_table("principals")
    op.drop_table("tags")
    op.drop_table("settings")
    op.drop_table("restore_jobs")
    op.drop_table("idempotency")
    op.drop_table("backup_jobs")
    op.drop_table("accounts")
