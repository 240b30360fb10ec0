"""Resource properties and sealed secrets (the plugin seam for database, S3 and block types).

Reserved in the revision chain so that work landing in parallel keeps one head; it
changes nothing until its owner fills :func:`upgrade` and :func:`downgrade` in.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
