"""The catalog's SQLAlchemy Core tables: the one description of the schema.

The Alembic migrations in ``migrations/versions`` must produce exactly this metadata
(tests compare them). Columns mirror the AWS Backup output shapes so a service answers
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

ALL_TABLES = tuple(metadata.sorted_tables)
