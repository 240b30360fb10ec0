"""KMS key policies (a column on kms_keys) and grants (a table): issue 10.

A key's ``policy`` holds its one key policy (named ``default``, as on AWS). Keys made
before this revision keep NULL there, which the key service reads as the default key
policy of their account ("Enable IAM User Permissions"), the one it gives new keys.

Written out in full (not derived from the models) so it stays the frozen history of
revision 0006.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ARN = sa.String(length=1024)


def upgrade() -> None:
    with op.batch_alter_table("kms_keys") as batch:
        batch.add_column(sa.Column("policy", sa.Text(), nullable=True))
    op.create_table(
        "kms_grants",
        sa.Column("grant_id", sa.String(length=64), nullable=False),
        sa.Column("key_arn", _ARN, nullable=False),
        sa.Column("grant_token", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=True),
        sa.Column("grantee_principal", _ARN, nullable=False),
        sa.Column("retiring_principal", _ARN, nullable=True),
        sa.Column("issuing_account", _ARN, nullable=False),
        sa.Column("operations", sa.Text(), nullable=False),
        sa.Column("constraints", sa.Text(), nullable=True),
        sa.Column("creation_date", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["key_arn"],
            ["kms_keys.arn"],
            name=op.f("fk_kms_grants_key_arn_kms_keys"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("grant_id", name=op.f("pk_kms_grants")),
        sa.UniqueConstraint("grant_token", name=op.f("uq_kms_grants_grant_token")),
    )
    op.create_index("ix_kms_grants_key_arn", "kms_grants", ["key_arn"], unique=False)
    op.create_index(
        "ix_kms_grants_retiring_principal", "kms_grants", ["retiring_principal"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_kms_grants_retiring_principal", table_name="kms_grants")
    op.drop_index("ix_kms_grants_key_arn", table_name="kms_grants")
    op.drop_table("kms_grants")
    with op.batch_alter_table("kms_keys") as batch:
        batch.drop_column("policy")
