"""Resource properties and sealed secrets (the plugin seam for database, S3 and block types).

A resource type's plugin splits what RegisterResource gives it into the source (shown),
``properties`` (non-secret settings, shown: an S3 endpoint, a PostgreSQL sslmode) and
secrets (a password, a secret access key). ``resources.properties`` holds the
properties as a JSON object text (NULL: none); ``resources.sealed_secrets`` the secrets
as one JSON object sealed under the root key (``SecretBox(root, "resource-secrets")``,
the resource ARN as context; NULL: none). Existing resources (Directory) have neither.

Written out in full (not derived from the models) so it stays the frozen history of
revision 0008.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("resources") as batch:
        batch.add_column(sa.Column("properties", sa.Text(), nullable=True))
        batch.add_column(sa.Column("sealed_secrets", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("resources") as batch:
        batch.drop_column("sealed_secrets")
        batch.drop_column("properties")
