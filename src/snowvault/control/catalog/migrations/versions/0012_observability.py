"""Vault notifications: SNS topics and subscriptions served by snowvault, the delivery
outbox, and the integrity watch's per-vault bookkeeping (issue 16).

The vaults' ``notifications`` column (revision 0001) holds each vault's SNSTopicArn and
events; this revision adds the topics it names, their subscriptions and the outbox the
delivery loop works through.

Written out in full (not derived from the models) so it stays the frozen history of
revision 0012.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sns_topics",
        sa.Column("topic_arn", sa.String(length=1024), nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("topic_arn", name=op.f("pk_sns_topics")),
        sa.UniqueConstraint(
            "account_id", "region", "name", name=op.f("uq_sns_topics_account_id_region_name")
        ),
    )
    op.create_table(
        "sns_subscriptions",
        sa.Column("subscription_arn", sa.String(length=1024), nullable=False),
        sa.Column("topic_arn", sa.String(length=1024), nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("protocol", sa.String(length=16), nullable=False),
        sa.Column("endpoint", sa.Text(), nullable=False),
        sa.Column("confirmed", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("token", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("subscription_arn", name=op.f("pk_sns_subscriptions")),
    )
    op.create_index(
        op.f("ix_sns_subscriptions_topic_arn"), "sns_subscriptions", ["topic_arn"], unique=False
    )
    op.create_table(
        "notification_outbox",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("message_id", sa.String(length=36), nullable=False),
        sa.Column("message_type", sa.String(length=32), nullable=False),
        sa.Column("topic_arn", sa.String(length=1024), nullable=False),
        sa.Column("subscription_arn", sa.String(length=1024), nullable=False),
        sa.Column("subject", sa.Text(), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("attributes", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=16), server_default="PENDING", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_notification_outbox")),
    )
    op.create_index(
        op.f("ix_notification_outbox_subscription_arn"),
        "notification_outbox",
        ["subscription_arn"],
        unique=False,
    )
    op.create_index(
        "ix_notification_outbox_state_next_attempt_at",
        "notification_outbox",
        ["state", "next_attempt_at"],
        unique=False,
    )
    op.create_table(
        "integrity_checks",
        sa.Column("vault_arn", sa.String(length=1024), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("missing", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("vault_arn", name=op.f("pk_integrity_checks")),
    )


def downgrade() -> None:
    op.drop_table("integrity_checks")
    op.drop_index("ix_notification_outbox_state_next_attempt_at", table_name="notification_outbox")
    op.drop_index(op.f("ix_notification_outbox_subscription_arn"), table_name="notification_outbox")
    op.drop_table("notification_outbox")
    op.drop_index(op.f("ix_sns_subscriptions_topic_arn"), table_name="sns_subscriptions")
    op.drop_table("sns_subscriptions")
    op.drop_table("sns_topics")
