"""Continuous recovery points: the restorable window and WAL bookkeeping (PostgreSQL PITR).

Reserved in the revision chain so that work landing in parallel keeps one head; it
changes nothing until its owner fills :func:`upgrade` and :func:`downgrade` in.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
