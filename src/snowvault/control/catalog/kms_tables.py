"""KMS keys, key versions, aliases and grants (the keys issue, and issue 10).

Tables here join the one tables.metadata; migration 0003 creates the first three, 0006
adds the key policy column and the grants table. Key material is
stored only sealed under the server root secret (``sealed_material``); a deleted key
keeps its row (state ``Deleted``) so vaults can say why they are unreadable, but loses
every version row, i.e. its material.

Must not depend on anything above ``snowvault.core``.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

from snowvault.control.catalog.tables import ACCOUNT, ARN, REGION, STATE, _ts, metadata

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
