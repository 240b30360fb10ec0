"""Vault Lock, legal holds and IAM beyond the initial schema (the access issue).

Tables here join the one ``tables.metadata``; migration 0004 creates them.

- ``vault_locks``: one row per vault that has a lock configuration (governance or
  compliance); the parameters themselves live in the ``vaults`` lock columns, which
  DescribeBackupVault reads. The row adds when the lock was put (``created_at``): the
  model's MinRetentionDays floor only applies to points created from then on.
- ``legal_holds``: CreateLegalHold's record; ``selection`` is the RecoveryPointSelection
  as JSON (a predicate, evaluated by the model, so later points are covered too).

IAM principals, user policies and access keys are in ``tables`` already; vault access
policies are the ``vaults.access_policy`` column.

Must not depend on anything above ``snowvault.core``.
"""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, Index, String, Table, Text

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
