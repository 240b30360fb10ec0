"""Backup plans, plan versions, rules, selections and scheduler state (the plans issue).

Written out in full (not derived from the models) so it stays the frozen history of
revision 0002.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts(name: str, *, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _plan_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["backup_plan_id"],
        ["backup_plans.backup_plan_id"],
        name=op.f(f"fk_{table}_backup_plan_id_backup_plans"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "backup_plans",
        sa.Column("backup_plan_id", sa.String(length=36), nullable=False),
        sa.Column("arn", sa.String(length=1024), nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("version_id", sa.String(length=64), nullable=False),
        sa.Column("creator_request_id", sa.String(length=255), nullable=True),
        sa.Column("advanced_backup_settings", sa.JSON(none_as_null=True), nullable=True),
        _ts("creation_date", nullable=False),
        _ts("deletion_date"),
        _ts("last_execution_date"),
        sa.PrimaryKeyConstraint("backup_plan_id", name=op.f("pk_backup_plans")),
        sa.UniqueConstraint("arn", name=op.f("uq_backup_plans_arn")),
    )
    op.create_index(
        "ix_backup_plans_account_region_creation",
        "backup_plans",
        ["account_id", "region", "creation_date"],
        unique=False,
    )
    op.create_table(
        "backup_plan_versions",
        sa.Column("backup_plan_id", sa.String(length=36), nullable=False),
        sa.Column("version_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("document", sa.JSON(none_as_null=True), nullable=False),
        sa.Column("advanced_backup_settings", sa.JSON(none_as_null=True), nullable=True),
        _ts("creation_date", nullable=False),
        _plan_fk("backup_plan_versions"),
        sa.PrimaryKeyConstraint(
            "backup_plan_id", "version_id", name=op.f("pk_backup_plan_versions")
        ),
    )
    op.create_index(
        "ix_backup_plan_versions_plan_creation",
        "backup_plan_versions",
        ["backup_plan_id", "creation_date"],
        unique=False,
    )
    op.create_table(
        "backup_rules",
        sa.Column("rule_id", sa.String(length=36), nullable=False),
        sa.Column("backup_plan_id", sa.String(length=36), nullable=False),
        sa.Column("rule_name", sa.String(length=255), nullable=False),
        sa.Column("document", sa.JSON(none_as_null=True), nullable=False),
        sa.Column("schedule_expression", sa.String(length=256), nullable=False),
        sa.Column("schedule_expression_timezone", sa.String(length=64), nullable=False),
        sa.Column("start_window_minutes", sa.Integer(), nullable=False),
        sa.Column("completion_window_minutes", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        _ts("planned_until", nullable=False),
        _ts("next_run_at"),
        _plan_fk("backup_rules"),
        sa.PrimaryKeyConstraint("rule_id", name=op.f("pk_backup_rules")),
    )
    op.create_index(
        op.f("ix_backup_rules_backup_plan_id"), "backup_rules", ["backup_plan_id"], unique=False
    )
    op.create_index(
        op.f("ix_backup_rules_next_run_at"), "backup_rules", ["next_run_at"], unique=False
    )
    op.create_table(
        "backup_selections",
        sa.Column("selection_id", sa.String(length=36), nullable=False),
        sa.Column("backup_plan_id", sa.String(length=36), nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("iam_role_arn", sa.String(length=1024), nullable=True),
        sa.Column("document", sa.JSON(none_as_null=True), nullable=False),
        sa.Column("creator_request_id", sa.String(length=255), nullable=True),
        _ts("creation_date", nullable=False),
        _plan_fk("backup_selections"),
        sa.PrimaryKeyConstraint("selection_id", name=op.f("pk_backup_selections")),
    )
    op.create_index(
        op.f("ix_backup_selections_backup_plan_id"),
        "backup_selections",
        ["backup_plan_id"],
        unique=False,
    )
    op.create_table(
        "scheduled_runs",
        sa.Column("rule_id", sa.String(length=36), nullable=False),
        _ts("scheduled_at", nullable=False),
        sa.Column("resource_arn", sa.String(length=1024), nullable=False),
        sa.Column("job_id", sa.String(length=36), nullable=False),
        _ts("created_at", nullable=False),
        sa.PrimaryKeyConstraint(
            "rule_id", "scheduled_at", "resource_arn", name=op.f("pk_scheduled_runs")
        ),
    )
    op.create_table(
        "lifecycle_runs",
        sa.Column("recovery_point_arn", sa.String(length=1024), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        _ts("due_at", nullable=False),
        _ts("started_at", nullable=False),
        _ts("completed_at"),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("status_message", sa.Text(), nullable=True),
        sa.Column("backup_vault_arn", sa.String(length=1024), nullable=True),
        sa.PrimaryKeyConstraint("recovery_point_arn", "action", name=op.f("pk_lifecycle_runs")),
    )
    op.create_index(
        "ix_lifecycle_runs_status_started",
        "lifecycle_runs",
        ["status", "started_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_lifecycle_runs_status_started", table_name="lifecycle_runs")
    op.drop_table("lifecycle_runs")
    op.drop_table("scheduled_runs")
    op.drop_index(op.f("ix_backup_selections_backup_plan_id"), table_name="backup_selections")
    op.drop_table("backup_selections")
    op.drop_index(op.f("ix_backup_rules_next_run_at"), table_name="backup_rules")
    op.drop_index(op.f("ix_backup_rules_backup_plan_id"), table_name="backup_rules")
    op.drop_table("backup_rules")
    op.drop_index("ix_backup_plan_versions_plan_creation", table_name="backup_plan_versions")
    op.drop_table("backup_plan_versions")
    op.drop_index("ix_backup_plans_account_region_creation", table_name="backup_plans")
    op.drop_table("backup_plans")
