"""Agents (issue 13): one row per enrolled host of an account, naming the agent's
principal (whose access key is in ``access_keys``), with the version it last reported
and when it was last seen; and the data key of each job attempt an agent runs, sealed
under the root key, dropped when the job ends.

Written out in full (not derived from the models) so it stays the frozen history of
revision 0013.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "agents",
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("principal_arn", sa.String(length=1024), nullable=False),
        sa.Column("enrolled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=True),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.account_id"], name=op.f("fk_agents_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["principal_arn"],
            ["principals.arn"],
            name=op.f("fk_agents_principal_arn_principals"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account_id", "host", name=op.f("pk_agents")),
        sa.UniqueConstraint("principal_arn", name=op.f("uq_agents_principal_arn")),
    )
    op.create_table(
        "agent_jobs",
        sa.Column("job_id", sa.String(length=36), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("sealed_key", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("job_id", name=op.f("pk_agent_jobs")),
    )


def downgrade() -> None:
    op.drop_table("agent_jobs")
    op.drop_table("agents")
