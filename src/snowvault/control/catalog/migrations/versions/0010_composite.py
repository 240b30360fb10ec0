"""Composite recovery points: parent/child links (IsParent, ParentRecoveryPointArn,
CompositeMemberIdentifier) and parent/child backup jobs (IsParent, ParentJobId).

Nothing to change in the schema: revision 0001 already created every column and index
composite backups use, mirroring the AWS output shapes:

- ``backup_jobs.is_parent`` (NOT NULL, default false) and ``backup_jobs.parent_job_id``
  (indexed ``ix_backup_jobs_parent_job_id``: ListBackupJobs ByParentJobId,
  DescribeBackupJob's ChildJobsInState);
- ``recovery_points.is_parent`` (NOT NULL, default false),
  ``recovery_points.parent_recovery_point_arn`` (indexed ``ix_recovery_points_parent``:
  ListRecoveryPointsByBackupVault ByParentRecoveryPointArn, a parent's delete) and
  ``recovery_points.composite_member_identifier``;
- ``restore_jobs.is_parent`` and ``restore_jobs.parent_job_id``.

A group's members are its resource's ``members`` property (revision 0008). Rows written
before composites existed are all standalone (is_parent false, no parent), which is
what they are, so no data moves either. The revision stays in the chain so the history
says when composites began to use these columns; upgrade and downgrade are no-ops.

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
    """Nothing: the columns and indexes above exist since revision 0001."""


def downgrade() -> None:
    """Nothing: upgrade changed nothing."""
