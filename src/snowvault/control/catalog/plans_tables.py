"""Backup plans, plan versions, rules, selections and scheduler state (the plans issue).

Tables here join the one ``tables.metadata``; migration 0002 creates them.

- ``backup_plans``: one row per plan; ``version_id`` is the current version,
  ``deletion_date`` set once deleted (the row stays so old versions remain readable).
- ``backup_plan_versions``: every version's full BackupPlan document (as returned by
  GetBackupPlan, RuleIds included), immutable.
- ``backup_rules``: the CURRENT version's rules, flattened for the planner; a rule keeps
  its ``rule_id`` and its ``planned_until`` across updates while its name stays, so an
  update never re-plans an occurrence. ``planned_until``: every occurrence up to this
  instant has been turned into jobs (or skipped); ``next_run_at`` the first after it.
- ``backup_selections``: CreateBackupSelection's document, per plan.
- ``scheduled_runs``: the planner's exactly-once ledger, primary key (rule, occurrence,
  resource): a second planner (another server, or after a restart) that tries the same
  triple inserts nothing and so creates no job.
- ``lifecycle_runs``: one record per recovery-point lifecycle action (cold transition,
  expiry), unique per (recovery point, action), with its outcome.

Must not depend on anything above ``snowvault.core``.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

from snowvault.control.catalog.tables import (
    ACCOUNT,
    ARN,
    NAME,
    REGION,
    STATE,
    _json,
    _ts,
    metadata,
)

PLAN_ID = String(36)

backup_plans = Table(
    "backup_plans",
    metadata,
    Column("backup_plan_id", PLAN_ID, primary_key=True),
    Column("arn", ARN, nullable=False, unique=True),
    Column("account_id", ACCOUNT, nullable=False),
    Column("region", REGION, nullable=False),
    Column("name", NAME, nullable=False),
    Column("version_id", String(64), nullable=False),
    Column("creator_request_id", NAME),
    Column("advanced_backup_settings", _json()),
    _ts("creation_date", nullable=False),
    _ts("deletion_date"),
    _ts("last_execution_date"),
    Index("ix_backup_plans_account_region_creation", "account_id", "region", "creation_date"),
)

backup_plan_versions = Table(
    "backup_plan_versions",
    metadata,
    Column(
        "backup_plan_id",
        PLAN_ID,
        ForeignKey("backup_plans.backup_plan_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("version_id", String(64), nullable=False),
    Column("name", NAME, nullable=False),
    Column("document", _json(), nullable=False),
    Column("advanced_backup_settings", _json()),
    _ts("creation_date", nullable=False),
    PrimaryKeyConstraint("backup_plan_id", "version_id"),
    Index("ix_backup_plan_versions_plan_creation", "backup_plan_id", "creation_date"),
)

backup_rules = Table(
    "backup_rules",
    metadata,
    Column("rule_id", String(36), primary_key=True),
    Column(
        "backup_plan_id",
        PLAN_ID,
        ForeignKey("backup_plans.backup_plan_id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("rule_name", NAME, nullable=False),
    Column("document", _json(), nullable=False),
    Column("schedule_expression", String(256), nullable=False),
    Column("schedule_expression_timezone", String(64), nullable=False),
    Column("start_window_minutes", Integer, nullable=False),
    Column("completion_window_minutes", Integer, nullable=False),
    Column("enabled", Boolean, nullable=False),
    _ts("planned_until", nullable=False),
    _ts("next_run_at", index=True),
)

backup_selections = Table(
    "backup_selections",
    metadata,
    Column("selection_id", String(36), primary_key=True),
    Column(
        "backup_plan_id",
        PLAN_ID,
        ForeignKey("backup_plans.backup_plan_id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("account_id", ACCOUNT, nullable=False),
    Column("region", REGION, nullable=False),
    Column("name", NAME, nullable=False),
    Column("iam_role_arn", ARN),
    Column("document", _json(), nullable=False),
    Column("creator_request_id", NAME),
    _ts("creation_date", nullable=False),
)

scheduled_runs = Table(
    "scheduled_runs",
    metadata,
    Column("rule_id", String(36), nullable=False),
    _ts("scheduled_at", nullable=False),
    Column("resource_arn", ARN, nullable=False),
    Column("job_id", String(36), nullable=False),
    _ts("created_at", nullable=False),
    PrimaryKeyConstraint("rule_id", "scheduled_at", "resource_arn"),
)

lifecycle_runs = Table(
    "lifecycle_runs",
    metadata,
    Column("recovery_point_arn", ARN, nullable=False),
    Column("action", String(16), nullable=False),
    _ts("due_at", nullable=False),
    _ts("started_at", nullable=False),
    _ts("completed_at"),
    Column("status", STATE, nullable=False),
    Column("status_message", Text),
    Column("backup_vault_arn", ARN),
    PrimaryKeyConstraint("recovery_point_arn", "action"),
    Index("ix_lifecycle_runs_status_started", "status", "started_at"),
)
