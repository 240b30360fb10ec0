"""Composite recovery points: parent/child links (IsParent, ParentRecoveryPointArn, CompositeMemberIdentifier).

Reserved in the revision chain so that work landing in parallel keeps one head; it
changes nothing until its owner fills :func:`upgrade` and :func:`downgrade` in.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
