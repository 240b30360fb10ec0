"""A stored recovery-point count per vault (ListBackupVaults' NumberOfRecoveryPoints).

Counting a vault's recovery points walked every entry of its index on each
ListBackupVaults/DescribeBackupVault (milliseconds at 10,000 points, the larger part of
the call). The count is now a column, kept by ``catalog.recovery_points.create`` and
``delete`` in the same transaction as the row they insert or delete; this revision
fills it from the rows that exist.

Written out in full (not derived from the models) so it stays the frozen history of
revision 0005.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("vaults") as batch:
        batch.add_column(
            sa.Column("number_of_recovery_points", sa.Integer(), nullable=False, server_default="0")
        )
    op.execute(
        "UPDATE vaults SET number_of_recovery_points = "
        "(SELECT count(*) FROM recovery_points "
        "WHERE recovery_points.backup_vault_arn = vaults.arn)"
    )


def downgrade() -> None:
    with op.batch_alter_table("vaults") as batch:
        batch.drop_column("number_of_recovery_points")
