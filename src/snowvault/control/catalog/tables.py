"""The catalog's SQLAlchemy Core tables: the one description of the schema.

The Alembic migrations in ``migrations/versions`` must produce exactly this metadata
(tests compare them). One module holds every table (it was four): importing it gives
the whole schema, so ``metadata`` and :data:`ALL_TABLES` never miss a family that
nothing happened to import yet. Columns mirror the AWS Backup output shapes so a service answers
``Describe*`` from one row. Every timestamp is :class:`UTCDateTime` (aware UTC in, aware
UTC out, on SQLite too). JSON columns store ``None`` as SQL NULL.

Must not depend on anything above ``snowvault.core`` (no services, engine or HTTP).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is aware UTC on the way in and on the way out, on every dialect.

    SQLite keeps no offset, so values are normalised to UTC and stored naive; PostgreSQL
    keeps ``timestamptz`` and returns the session zone, converted back to UTC here.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime given to the catalog: {value!r}")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _json() -> JSON:
    return JSON(none_as_null=True)


def _ts(name: str, *, nullable: bool = True, index: bool = False) -> Column[Any]:
    return Column(name, UTCDateTime(), nullable=nullable, index=index)


ARN = String(1024)
ACCOUNT = String(12)
REGION = String(32)
NAME = String(255)
STATE = String(16)

# --- server, accounts and identities -------------------------------------------------

settings = Table(
    "settings",
    metadata,
    Column("key", String(128), primary_key=True),
    Column("value", _json()),
)

accounts = Table(
    "accounts",
    metadata,
    Column("account_id", ACCOUNT, primary_key=True),
    Column("name", NAME, nullable=False),
    Column("email", NAME),
    _ts("created_at", nullable=False),
)

principals = Table(
    "principals",
    metadata,
    Column("arn", ARN, primary_key=True),
    Column("account_id", ACCOUNT, ForeignKey("accounts.account_id"), nullable=False),
    Column("name", NAME, nullable=False),
    Column("path", String(512), nullable=False, server_default="/"),
    Column("is_root", Boolean, nullable=False, server_default=text("false")),
    _ts("created_at", nullable=False),
    UniqueConstraint("account_id", "name"),
)

user_policies = Table(
    "user_policies",
    metadata,
    Column("principal_arn", ARN, ForeignKey("principals.arn", ondelete="CASCADE"), nullable=False),
    Column("policy_name", String(128), nullable=False),
    Column("document", _json(), nullable=False),
    _ts("updated_at", nullable=False),
    PrimaryKeyConstraint("principal_arn", "policy_name"),
)

access_keys = Table(
    "access_keys",
    metadata,
    Column("access_key_id", String(128), primary_key=True),
    Column(
        "principal_arn",
        ARN,
        ForeignKey("principals.arn", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("sealed_secret", LargeBinary, nullable=False),
    Column("status", STATE, nullable=False, server_default="Active"),
    _ts("created_at", nullable=False),
    _ts("last_used_at"),
)

region_settings = Table(
    "region_settings",
    metadata,
    Column("account_id", ACCOUNT, ForeignKey("accounts.account_id"), nullable=False),
    Column("region", REGION, nullable=False),
    Column("resource_type_opt_in_preference", _json()),
    Column("resource_type_management_preference", _json()),
    _ts("updated_at", nullable=False),
    PrimaryKeyConstraint("account_id", "region"),
)

# --- vaults and tags -----------------------------------------------------------------

vaults = Table(
    "vaults",
    metadata,
    Column("arn", ARN, primary_key=True),
    Column("account_id", ACCOUNT, ForeignKey("accounts.account_id"), nullable=False),
    Column("region", REGION, nullable=False),
    Column("name", String(64), nullable=False),
    Column("vault_type", String(40), nullable=False, server_default="BACKUP_VAULT"),
    Column("vault_state", STATE, nullable=False, server_default="AVAILABLE"),
    _ts("creation_date", nullable=False),
    Column("encryption_key_arn", ARN),
    Column("encryption_key_type", String(32)),
    Column("creator_request_id", NAME),
    Column("source_backup_vault_arn", ARN),
    Column("storage_url", Text, nullable=False),
    Column("repository_id", String(128)),
    Column("sealed_repository_secret", LargeBinary),
    Column("access_policy", _json()),
    Column("notifications", _json()),
    Column("locked", Boolean, nullable=False, server_default=text("false")),
    Column("min_retention_days", Integer),
    Column("max_retention_days", Integer),
    Column("changeable_for_days", Integer),
    _ts("lock_date"),
    # kept by recovery_points.create/delete in their own transaction (revision 0005)
    Column("number_of_recovery_points", Integer, nullable=False, server_default="0"),
    UniqueConstraint("account_id", "region", "name"),
)

tags = Table(
    "tags",
    metadata,
    Column("resource_arn", ARN, nullable=False),
    Column("key", String(128), nullable=False),
    Column("value", String(256), nullable=False),
    PrimaryKeyConstraint("resource_arn", "key"),
    Index("ix_tags_key_value", "key", "value"),
)

# --- protected resources -------------------------------------------------------------

resources = Table(
    "resources",
    metadata,
    Column("arn", ARN, primary_key=True),
    Column("account_id", ACCOUNT, ForeignKey("accounts.account_id"), nullable=False),
    Column("region", REGION, nullable=False),
    Column("resource_type", String(64), nullable=False),
    Column("name", NAME),
    Column("source", Text),
    # The plugin's non-secret settings, a JSON object (NULL: none); its secrets, one JSON
    # object sealed under the root key with the ARN as context (catalog/sealed_secrets.py).
    Column("properties", Text),
    Column("sealed_secrets", LargeBinary),
    Column("worker_label", NAME),
    _ts("created_at", nullable=False),
    _ts("last_backup_time"),
    Column("last_backup_vault_arn", ARN),
    Column("last_recovery_point_arn", ARN),
    Column("latest_restore_execution_time_minutes", BigInteger),
    _ts("latest_restore_job_creation_date"),
    _ts("latest_restore_recovery_point_creation_date"),
    Index("ix_resources_account_region_arn", "account_id", "region", "arn"),
)

# --- jobs (the queue) ----------------------------------------------------------------


def _lease_columns() -> list[Column[Any]]:
    """The lease a worker holds on a job while it runs it (see docs/design/catalog.md)."""
    return [
        Column("worker_label", NAME),
        Column("lease_owner", NAME),
        _ts("lease_expires_at"),
        _ts("heartbeat_at"),
        Column("attempts", Integer, nullable=False, server_default="0"),
        Column("max_attempts", Integer, nullable=False, server_default="3"),
    ]


backup_jobs = Table(
    "backup_jobs",
    metadata,
    Column("job_id", String(36), primary_key=True),
    Column("account_id", ACCOUNT, nullable=False),
    Column("region", REGION, nullable=False),
    Column("backup_vault_name", String(64), nullable=False),
    Column("backup_vault_arn", ARN, nullable=False),
    Column("vault_type", String(40)),
    Column("resource_arn", ARN, nullable=False),
    Column("resource_type", String(64), nullable=False),
    Column("resource_name", NAME),
    Column("state", STATE, nullable=False),
    Column("status_message", Text),
    Column("message_category", String(64)),
    _ts("creation_date", nullable=False),
    _ts("initiation_date"),
    _ts("start_date"),
    _ts("completion_date"),
    _ts("start_by"),
    _ts("expected_completion_date"),
    Column("percent_done", Float),
    Column("bytes_transferred", BigInteger),
    Column("backup_size_in_bytes", BigInteger),
    Column("iam_role_arn", ARN),
    Column("idempotency_token", NAME),
    Column("backup_type", String(32)),
    Column("backup_plan_id", NAME),
    Column("backup_plan_arn", ARN),
    Column("backup_plan_version", NAME),
    Column("backup_rule_id", NAME),
    Column("created_by", _json()),
    Column("lifecycle", _json()),
    Column("recovery_point_tags", _json()),
    Column("backup_options", _json()),
    Column("recovery_point_arn", ARN),
    Column("encryption_key_arn", ARN),
    Column("is_encrypted", Boolean, nullable=False, server_default=text("true")),
    Column("is_parent", Boolean, nullable=False, server_default=text("false")),
    Column("parent_job_id", String(36), index=True),
    *_lease_columns(),
    Index("ix_backup_jobs_account_region_creation", "account_id", "region", "creation_date"),
    Index("ix_backup_jobs_state_creation", "state", "creation_date"),
    Index("ix_backup_jobs_resource_creation", "resource_arn", "creation_date"),
    Index("ix_backup_jobs_lease_expires_at", "lease_expires_at"),
    Index(
        "uq_backup_jobs_one_running_per_resource",
        "resource_arn",
        unique=True,
        sqlite_where=text("state IN ('RUNNING', 'ABORTING')"),
        postgresql_where=text("state IN ('RUNNING', 'ABORTING')"),
    ),
)

restore_jobs = Table(
    "restore_jobs",
    metadata,
    Column("restore_job_id", String(36), primary_key=True),
    Column("account_id", ACCOUNT, nullable=False),
    Column("region", REGION, nullable=False),
    Column("recovery_point_arn", ARN, nullable=False),
    Column("backup_vault_arn", ARN),
    Column("source_resource_arn", ARN),
    Column("resource_type", String(64)),
    Column("metadata", _json()),
    Column("iam_role_arn", ARN),
    Column("idempotency_token", NAME),
    Column("status", STATE, nullable=False),
    Column("status_message", Text),
    _ts("creation_date", nullable=False),
    _ts("start_date"),
    _ts("completion_date"),
    _ts("recovery_point_creation_date"),
    Column("percent_done", Float),
    Column("bytes_transferred", BigInteger),
    Column("backup_size_in_bytes", BigInteger),
    Column("expected_completion_time_minutes", BigInteger),
    Column("created_resource_arn", ARN),
    Column("created_by", _json()),
    Column("validation_status", STATE),
    Column("validation_status_message", Text),
    Column("deletion_status", STATE),
    Column("deletion_status_message", Text),
    Column("is_parent", Boolean, nullable=False, server_default=text("false")),
    Column("parent_job_id", String(36), index=True),
    *_lease_columns(),
    Index("ix_restore_jobs_account_region_creation", "account_id", "region", "creation_date"),
    Index("ix_restore_jobs_status_creation", "status", "creation_date"),
    Index("ix_restore_jobs_source_creation", "source_resource_arn", "creation_date"),
    Index("ix_restore_jobs_lease_expires_at", "lease_expires_at"),
)

copy_jobs = Table(  # revision 0011: StartCopyJob's and CopyActions' jobs (the copy queue)
    "copy_jobs",
    metadata,
    Column("copy_job_id", String(36), primary_key=True),
    Column("account_id", ACCOUNT, nullable=False),
    Column("region", REGION, nullable=False),
    Column("source_backup_vault_arn", ARN, nullable=False),
    Column("source_recovery_point_arn", ARN, nullable=False),
    Column("destination_backup_vault_arn", ARN, nullable=False),
    Column("destination_vault_type", String(40)),
    Column("destination_recovery_point_arn", ARN, nullable=False),
    Column("destination_encryption_key_arn", ARN),
    Column("destination_recovery_point_lifecycle", _json()),
    Column("resource_arn", ARN, nullable=False),
    Column("resource_type", String(64), nullable=False),
    Column("resource_name", NAME),
    Column("state", STATE, nullable=False),
    Column("status_message", Text),
    Column("message_category", String(64)),
    _ts("creation_date", nullable=False),
    _ts("start_date"),
    _ts("completion_date"),
    Column("percent_done", Float),
    Column("bytes_transferred", BigInteger),
    Column("backup_size_in_bytes", BigInteger),
    Column("iam_role_arn", ARN),
    Column("idempotency_token", NAME),
    Column("created_by", _json()),
    Column("created_by_backup_job_id", String(36)),
    Column("composite_member_identifier", NAME),
    Column("is_parent", Boolean, nullable=False, server_default=text("false")),
    Column("parent_job_id", String(36), index=True),
    *_lease_columns(),
    Index("ix_copy_jobs_account_region_creation", "account_id", "region", "creation_date"),
    Index("ix_copy_jobs_state_creation", "state", "creation_date"),
    Index("ix_copy_jobs_source_point", "source_recovery_point_arn"),
    Index("ix_copy_jobs_destination_vault", "destination_backup_vault_arn"),
    Index("ix_copy_jobs_lease_expires_at", "lease_expires_at"),
)

cold_moves = Table(  # revision 0011: when the cold-data sweep last moved a vault's packs
    "cold_moves",
    metadata,
    Column("vault_arn", ARN, primary_key=True),
    _ts("moved_at", nullable=False),
)

# --- recovery points -----------------------------------------------------------------

recovery_points = Table(
    "recovery_points",
    metadata,
    Column("arn", ARN, primary_key=True),
    Column("account_id", ACCOUNT, nullable=False),
    Column("region", REGION, nullable=False),
    Column("backup_vault_name", String(64), nullable=False),
    Column("backup_vault_arn", ARN, ForeignKey("vaults.arn"), nullable=False),
    Column("source_backup_vault_arn", ARN),
    Column("vault_type", String(40)),
    Column("engine_recovery_point_id", String(128)),
    Column("resource_arn", ARN, nullable=False),
    Column("resource_type", String(64), nullable=False),
    Column("resource_name", NAME),
    Column("source_job_id", String(36)),
    Column("iam_role_arn", ARN),
    Column("status", STATE, nullable=False),
    Column("status_message", Text),
    Column("storage_class", STATE, nullable=False, server_default="WARM"),
    _ts("creation_date", nullable=False),
    _ts("initiation_date"),
    _ts("completion_date"),
    Column("backup_size_in_bytes", BigInteger),
    Column("lifecycle", _json()),
    _ts("move_to_cold_at", index=True),
    _ts("delete_at", index=True),
    Column("is_encrypted", Boolean, nullable=False, server_default=text("true")),
    Column("encryption_key_arn", ARN),
    Column("encryption_key_type", String(32)),
    Column("parent_recovery_point_arn", ARN),
    Column("is_parent", Boolean, nullable=False, server_default=text("false")),
    Column("composite_member_identifier", NAME),
    _ts("last_restore_time"),
    Column("backup_plan_id", NAME),
    Column("created_by", _json()),
    Index("ix_recovery_points_vault_creation", "backup_vault_arn", "creation_date", "arn"),
    Index("ix_recovery_points_resource_creation", "resource_arn", "creation_date", "arn"),
    Index("ix_recovery_points_parent", "parent_recovery_point_arn"),
)

# --- vault maintenance (the sweeps' bookkeeping, revision 0007) ----------------------

vault_maintenance = Table(
    "vault_maintenance",
    metadata,
    # no foreign key: a failed job may mark a vault deleted meanwhile; the sweep drops it
    Column("vault_arn", ARN, primary_key=True),
    _ts("prune_pending_since"),
    Column("prune_bypass_governance", Boolean, nullable=False, server_default=text("false")),
    _ts("orphan_prune_due_at"),
    Column("retention_fingerprint", String(64)),
    _ts("retention_renew_at"),
)

# --- idempotency ---------------------------------------------------------------------

idempotency = Table(
    "idempotency",
    metadata,
    Column("account_id", ACCOUNT, nullable=False),
    Column("operation", String(64), nullable=False),
    Column("token", NAME, nullable=False),
    Column("result", _json(), nullable=False),
    _ts("created_at", nullable=False, index=True),
    PrimaryKeyConstraint("account_id", "operation", "token"),
)

# --- backup plans and the scheduler (revision 0002) -----------------------------------
#
# - ``backup_plans``: one row per plan; ``version_id`` is the current version,
#   ``deletion_date`` set once deleted (the row stays so old versions remain readable).
# - ``backup_plan_versions``: every version's full BackupPlan document (as returned by
#   GetBackupPlan, RuleIds included), immutable.
# - ``backup_rules``: the CURRENT version's rules, flattened for the planner; a rule keeps
#   its ``rule_id`` and its ``planned_until`` across updates while its name stays, so an
#   update never re-plans an occurrence. ``planned_until``: every occurrence up to this
#   instant has been turned into jobs (or skipped); ``next_run_at`` the first after it.
# - ``backup_selections``: CreateBackupSelection's document, per plan.
# - ``scheduled_runs``: the planner's exactly-once ledger, primary key (rule, occurrence,
#   resource): a second planner (another server, or after a restart) that tries the same
#   triple inserts nothing and so creates no job.
# - ``lifecycle_runs``: one record per recovery-point lifecycle action (cold transition,
#   expiry), unique per (recovery point, action), with its outcome.

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

# --- KMS keys (revisions 0003, 0006) --------------------------------------------------
#
# Keys, key versions, aliases and grants. Migration 0003 creates the first three, 0006
# adds the key policy column and the grants table. Key material is stored only sealed
# under the server root secret (``sealed_material``); a deleted key keeps its row
# (state ``Deleted``) so vaults can say why they are unreadable, but loses every
# version row, i.e. its material.

kms_keys = Table(
    "kms_keys",
    metadata,
    Column("arn", ARN, primary_key=True),
    Column("key_id", String(64), nullable=False, unique=True),
    Column("account_id", ACCOUNT, nullable=False),
    Column("region", REGION, nullable=False),
    Column("description", Text, nullable=False),
    Column("key_usage", String(32), nullable=False),
    Column("key_spec", String(32), nullable=False),
    Column("origin", String(32), nullable=False),
    Column("key_manager", String(16), nullable=False),
    Column("key_state", STATE, nullable=False),
    _ts("creation_date", nullable=False),
    _ts("deletion_date", index=True),
    Column("pending_window_days", Integer),
    Column("rotation_enabled", Boolean, nullable=False),
    Column("rotation_period_days", Integer),
    _ts("next_rotation_date", index=True),
    _ts("on_demand_rotation_start"),
    Column("current_version", Integer, nullable=False),
    Column("policy", Text),  # the "default" key policy; NULL: the default policy (pre-0006)
    Index("ix_kms_keys_account_region_creation", "account_id", "region", "creation_date"),
)

kms_key_versions = Table(
    "kms_key_versions",
    metadata,
    Column("key_arn", ARN, ForeignKey("kms_keys.arn", ondelete="CASCADE"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("sealed_material", LargeBinary, nullable=False),
    Column("rotation_type", String(16), nullable=False),
    _ts("created_at", nullable=False),
    PrimaryKeyConstraint("key_arn", "version"),
)

kms_aliases = Table(
    "kms_aliases",
    metadata,
    Column("account_id", ACCOUNT, nullable=False),
    Column("region", REGION, nullable=False),
    Column("alias_name", String(256), nullable=False),
    Column("target_key_arn", ARN, ForeignKey("kms_keys.arn", ondelete="CASCADE"), nullable=False),
    _ts("creation_date", nullable=False),
    _ts("last_updated_date", nullable=False),
    PrimaryKeyConstraint("account_id", "region", "alias_name"),
    Index("ix_kms_aliases_target_key_arn", "target_key_arn"),
)

kms_grants = Table(
    "kms_grants",
    metadata,
    Column("grant_id", String(64), primary_key=True),
    Column("key_arn", ARN, ForeignKey("kms_keys.arn", ondelete="CASCADE"), nullable=False),
    Column("grant_token", String(128), nullable=False, unique=True),
    Column("name", String(256)),
    Column("grantee_principal", ARN, nullable=False),
    Column("retiring_principal", ARN),
    Column("issuing_account", ARN, nullable=False),
    Column("operations", Text, nullable=False),  # JSON list of operation names
    Column("constraints", Text),  # JSON GrantConstraints, or NULL
    _ts("creation_date", nullable=False),
    # Creation order within the key: grants made in the same instant still list in order.
    Column("seq", Integer, nullable=False),
    Index("ix_kms_grants_key_arn", "key_arn"),
    Index("ix_kms_grants_retiring_principal", "retiring_principal"),
)

# --- Vault Lock and legal holds (revision 0004) ---------------------------------------
#
# - ``vault_locks``: one row per vault that has a lock configuration (governance or
#   compliance); the parameters themselves live in the ``vaults`` lock columns, which
#   DescribeBackupVault reads. The row adds when the lock was put (``created_at``): the
#   model's MinRetentionDays floor only applies to points created from then on.
# - ``legal_holds``: CreateLegalHold's record; ``selection`` is the RecoveryPointSelection
#   as JSON (a predicate, evaluated by the model, so later points are covered too).
#
# IAM principals, user policies and access keys are above; vault access policies are
# the ``vaults.access_policy`` column.

vault_locks = Table(
    "vault_locks",
    metadata,
    Column("vault_arn", ARN, ForeignKey("vaults.arn", ondelete="CASCADE"), primary_key=True),
    _ts("created_at", nullable=False),
)

legal_holds = Table(
    "legal_holds",
    metadata,
    Column("legal_hold_id", String(36), primary_key=True),
    Column("legal_hold_arn", ARN, nullable=False),
    Column("account_id", ACCOUNT, nullable=False),
    Column("region", REGION, nullable=False),
    Column("title", NAME, nullable=False),
    Column("description", Text, nullable=False),
    Column("status", STATE, nullable=False),
    Column("selection", _json(), nullable=False),
    Column("idempotency_token", NAME),
    _ts("creation_date", nullable=False),
    _ts("cancellation_date"),
    Column("cancel_description", Text),
    _ts("retain_record_until"),
    Index("ix_legal_holds_account_region_status", "account_id", "region", "status"),
)

# --- continuous backup (revision 0009) ---------------------------------------------
#
# - ``continuous_points``: the CONTINUOUS recovery point of one resource in one vault (at
#   most one: the unique constraint), its rule, replication slot and restorable window
#   (``earliest``/``latest``, the source server's clock); a recovery point is continuous
#   exactly when it has a row here (``recovery_points`` keeps the AWS columns).
# - ``continuous_pieces``: the engine recovery points that make up its chain: base
#   backups (``base``), completed WAL files (``wal``) and the current partial segment
#   (``partial``, replaced on every shipment). LSNs are stored as integers.

continuous_points = Table(
    "continuous_points",
    metadata,
    Column(
        "recovery_point_arn",
        ARN,
        ForeignKey("recovery_points.arn", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("resource_arn", ARN, nullable=False),
    Column("backup_vault_arn", ARN, nullable=False),
    Column("rule_id", String(36)),
    Column("slot_name", String(63), nullable=False),
    Column("retention_days", Integer, nullable=False),
    _ts("earliest"),
    _ts("latest"),
    _ts("last_base_at"),
    _ts("next_base_at"),
    Column("shipped_lsn", BigInteger),
    Column("gap_message", Text),
    _ts("updated_at", nullable=False),
    UniqueConstraint("resource_arn", "backup_vault_arn"),
)

continuous_pieces = Table(
    "continuous_pieces",
    metadata,
    Column(
        "recovery_point_arn",
        ARN,
        ForeignKey("continuous_points.recovery_point_arn", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("engine_id", String(128), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("name", String(255), nullable=False),
    Column("timeline", Integer, nullable=False),
    Column("begin_lsn", BigInteger, nullable=False),
    Column("end_lsn", BigInteger, nullable=False),
    _ts("begin_time"),
    _ts("end_time"),
    Column("size", BigInteger, nullable=False, server_default="0"),
    _ts("created_at", nullable=False),
    PrimaryKeyConstraint("recovery_point_arn", "engine_id"),
    Index("ix_continuous_pieces_point_kind_end", "recovery_point_arn", "kind", "end_lsn"),
)

# --- notifications: SNS topics, subscriptions, the delivery outbox (revision 0012) ----
#
# - ``sns_topics``: the topics snowvault serves itself (a small SNS subset); a vault's
#   ``notifications`` column names one by ARN.
# - ``sns_subscriptions``: http(s) endpoints of a topic; ``confirmed`` once the endpoint
#   called back with ``token`` (the SubscriptionConfirmation handshake).
# - ``notification_outbox``: one row per message per subscription, written in the
#   transaction of what caused it; the delivery loop POSTs ``PENDING`` rows in ``seq``
#   order per subscription, retrying with backoff until DELIVERED or FAILED. Survives
#   restarts because it is the catalog.
# - ``integrity_checks``: the integrity watch's bookkeeping per vault: when the catalog's
#   recovery points were last reconciled with the manifests in the vault's store, and how
#   many were missing then.

sns_topics = Table(
    "sns_topics",
    metadata,
    Column("topic_arn", ARN, primary_key=True),
    Column("account_id", ACCOUNT, nullable=False),
    Column("region", REGION, nullable=False),
    Column("name", NAME, nullable=False),
    _ts("created_at", nullable=False),
    UniqueConstraint("account_id", "region", "name"),
)

sns_subscriptions = Table(
    "sns_subscriptions",
    metadata,
    Column("subscription_arn", ARN, primary_key=True),
    Column("topic_arn", ARN, nullable=False, index=True),
    Column("account_id", ACCOUNT, nullable=False),
    Column("protocol", String(16), nullable=False),
    Column("endpoint", Text, nullable=False),
    Column("confirmed", Boolean, nullable=False, server_default=text("false")),
    Column("token", String(128), nullable=False),
    _ts("created_at", nullable=False),
)

notification_outbox = Table(
    "notification_outbox",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("message_id", String(36), nullable=False),
    Column("message_type", String(32), nullable=False),
    Column("topic_arn", ARN, nullable=False),
    Column("subscription_arn", ARN, nullable=False, index=True),
    Column("subject", Text),
    Column("message", Text, nullable=False),
    Column("attributes", _json()),
    _ts("created_at", nullable=False),
    Column("state", STATE, nullable=False, server_default="PENDING"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    _ts("next_attempt_at", nullable=False),
    _ts("delivered_at"),
    Column("last_error", Text),
    Index("ix_notification_outbox_state_next_attempt_at", "state", "next_attempt_at"),
)

integrity_checks = Table(
    "integrity_checks",
    metadata,
    Column("vault_arn", ARN, primary_key=True),
    _ts("checked_at", nullable=False),
    Column("missing", Integer, nullable=False, server_default="0"),
)

# --- agents (issue 13) ----------------------------------------------------------------

agents = Table(
    "agents",
    metadata,
    Column("account_id", ACCOUNT, ForeignKey("accounts.account_id"), nullable=False),
    Column("host", NAME, nullable=False),
    Column("principal_arn", ARN, ForeignKey("principals.arn", ondelete="CASCADE"), nullable=False),
    _ts("enrolled_at", nullable=False),
    Column("version", String(64)),
    _ts("last_seen_at"),
    PrimaryKeyConstraint("account_id", "host"),
    UniqueConstraint("principal_arn"),
)

agent_jobs = Table(  # the data key of one attempt of a job an agent runs
    "agent_jobs",
    metadata,
    Column("job_id", String(36), primary_key=True),
    Column("attempt", Integer, nullable=False),
    Column("host", NAME, nullable=False),
    Column("sealed_key", LargeBinary, nullable=False),
    _ts("created_at", nullable=False),
)

ALL_TABLES = tuple(metadata.sorted_tables)
