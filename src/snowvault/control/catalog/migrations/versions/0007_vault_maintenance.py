"""The sweeps' bookkeeping per vault in a table of its own (issue 9).

Prune-pending marks, governance-bypass marks, orphan-prune due times and the
store-retention sweep's fingerprints were string keys of the ``settings`` table
(``prune-pending:<arn>``, ``prune-bypass-governance:<arn>``, ``orphan-prune:<arn>``,
``store-retention:<arn>``). They become the columns of ``vault_maintenance``, one row per
vault; the upgrade moves the rows that exist and the downgrade moves them back.

Written out in full (not derived from the models) so it stays the frozen history of
revision 0007.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PRUNE = "prune-pending:"
BYPASS = "prune-bypass-governance:"
ORPHANS = "orphan-prune:"
RETENTION = "store-retention:"

_settings = sa.table("settings", sa.column("key", sa.String), sa.column("value", sa.JSON))
_maintenance = sa.table(
    "vault_maintenance",
    sa.column("vault_arn", sa.String),
    sa.column("prune_pending_since", sa.DateTime(timezone=True)),
    sa.column("prune_bypass_governance", sa.Boolean),
    sa.column("orphan_prune_due_at", sa.DateTime(timezone=True)),
    sa.column("retention_fingerprint", sa.String),
    sa.column("retention_renew_at", sa.DateTime(timezone=True)),
)


def upgrade() -> None:
    op.create_table(
        "vault_maintenance",
        sa.Column("vault_arn", sa.String(length=1024), nullable=False),
        sa.Column("prune_pending_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "prune_bypass_governance",
            sa.Boolean(),
            server_default=sa.text("false"),
            nullable=False,
        ),
        sa.Column("orphan_prune_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("retention_fingerprint", sa.String(length=64), nullable=True),
        sa.Column("retention_renew_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("vault_arn", name=op.f("pk_vault_maintenance")),
    )
    _move_settings_in()


def downgrade() -> None:
    _move_settings_out()
    op.drop_table("vault_maintenance")


def _when(value: Any) -> datetime | None:
    """An ISO string from a settings value as the catalog stores timestamps (UTC; naive
    on SQLite, where the column keeps no offset)."""
    if not isinstance(value, str):
        return None
    when = datetime.fromisoformat(value)
    when = (when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(UTC)
    return when.replace(tzinfo=None) if op.get_bind().dialect.name == "sqlite" else when


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC).isoformat()


def _move_settings_in() -> None:
    conn = op.get_bind()
    rows: dict[str, dict[str, Any]] = {}

    def row(arn: str) -> dict[str, Any]:
        return rows.setdefault(
            arn,
            {
                "vault_arn": arn,
                "prune_pending_since": None,
                "prune_bypass_governance": False,
                "orphan_prune_due_at": None,
                "retention_fingerprint": None,
                "retention_renew_at": None,
            },
        )

    moved = []
    for key, value in conn.execute(sa.select(_settings.c.key, _settings.c.value)):
        if key.startswith(PRUNE):
            row(key.removeprefix(PRUNE))["prune_pending_since"] = _when(value)
        elif key.startswith(BYPASS):
            row(key.removeprefix(BYPASS))["prune_bypass_governance"] = True
        elif key.startswith(ORPHANS):
            row(key.removeprefix(ORPHANS))["orphan_prune_due_at"] = _when(value)
        elif key.startswith(RETENTION) and isinstance(value, dict):
            target = row(key.removeprefix(RETENTION))
            target["retention_fingerprint"] = value.get("fingerprint")
            target["retention_renew_at"] = _when(value.get("renew_at"))
        else:
            continue
        moved.append(key)
    for arn, values in rows.items():
        if values["prune_pending_since"] is None:  # a bypass mark alone asked for nothing
            values["prune_bypass_governance"] = False
        if any(values[c] for c in values if c != "vault_arn"):
            conn.execute(_maintenance.insert().values(**rows[arn]))
    if moved:
        conn.execute(_settings.delete().where(_settings.c.key.in_(moved)))


def _move_settings_out() -> None:
    conn = op.get_bind()
    out: list[dict[str, Any]] = []
    for r in conn.execute(sa.select(_maintenance)):
        arn = r.vault_arn
        if r.prune_pending_since is not None:
            out.append({"key": PRUNE + arn, "value": _iso(r.prune_pending_since)})
            if r.prune_bypass_governance:
                out.append({"key": BYPASS + arn, "value": _iso(r.prune_pending_since)})
        if r.orphan_prune_due_at is not None:
            out.append({"key": ORPHANS + arn, "value": _iso(r.orphan_prune_due_at)})
        if r.retention_fingerprint is not None:
            record = {
                "fingerprint": r.retention_fingerprint,
                "renew_at": _iso(r.retention_renew_at),
            }
            out.append({"key": RETENTION + arn, "value": record})
    if out:
        conn.execute(_settings.insert(), out)
