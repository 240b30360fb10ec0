"""Catalog rows and model records (jobs, recovery points) as AWS Backup output shapes: the one place
that maps them to AWS names (only modelled members are sent).

An empty structure (no CreatedBy, no calculated lifecycle) is left out, as AWS does; it
would cost every client a parse per item of a 1000-item page.

Must not depend on the CLI or web interfaces.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from snowvault.control.model import jobs, lifecycle
from snowvault.interfaces.api.handlers.common import Out, drop_none

Row = dict[str, Any]


def vault(row: Row) -> Out:
    return drop_none(
        {
            "BackupVaultName": row["name"],
            "BackupVaultArn": row["arn"],
            "VaultType": row["vault_type"],
            "VaultState": row["vault_state"],
            "CreationDate": row["creation_date"],
            "EncryptionKeyArn": row["encryption_key_arn"],
            "EncryptionKeyType": row["encryption_key_type"],
            "CreatorRequestId": row["creator_request_id"],
            "NumberOfRecoveryPoints": int(row["number_of_recovery_points"]),
            "Locked": bool(row["locked"]),
            "MinRetentionDays": row["min_retention_days"],
            "MaxRetentionDays": row["max_retention_days"],
            "LockDate": row["lock_date"],
            "SourceBackupVaultArn": row["source_backup_vault_arn"],
        }
    )


def _percent(value: float | None) -> str | None:
    return None if value is None else f"{value:.1f}"


def _lifecycle(data: Mapping[str, Any] | None) -> Out | None:
    if not data:
        return None
    return {k: v for k, v in data.items() if k in ("MoveToColdStorageAfterDays", "DeleteAfterDays")}


def backup_job(job: jobs.BackupJob) -> Out:
    return drop_none(
        {
            "AccountId": job.account_id,
            "BackupJobId": job.job_id,
            "BackupVaultName": job.backup_vault_name,
            "BackupVaultArn": job.backup_vault_arn,
            "VaultType": job.vault_type,
            "RecoveryPointArn": job.recovery_point_arn,
            "RecoveryPointLifecycle": _lifecycle(job.lifecycle),
            "EncryptionKeyArn": job.encryption_key_arn,
            "IsEncrypted": bool(job.is_encrypted),
            "ResourceArn": job.resource_arn,
            "ResourceType": job.resource_type,
            "ResourceName": job.resource_name,
            "CreationDate": job.creation_date,
            "InitiationDate": job.initiation_date,
            "CompletionDate": job.completion_date,
            "State": str(job.state),
            "StatusMessage": job.status_message,
            "MessageCategory": job.message_category,
            "PercentDone": _percent(job.percent_done),
            "BytesTransferred": job.bytes_transferred,
            "BackupSizeInBytes": job.backup_size_in_bytes,
            "IamRoleArn": job.iam_role_arn,
            "CreatedBy": job.created_by,
            "ExpectedCompletionDate": job.expected_completion_date,
            "StartBy": job.start_by,
            "BackupOptions": job.backup_options,
            "BackupType": job.backup_type,
            "ParentJobId": job.parent_job_id,
            "IsParent": bool(job.is_parent),
        }
    )


def started_backup_job(job: jobs.BackupJob) -> Out:
    """StartBackupJob's output."""
    return {
        "BackupJobId": job.job_id,
        "RecoveryPointArn": job.recovery_point_arn,
        "CreationDate": job.creation_date,
        "IsParent": bool(job.is_parent),
    }


def calculated(point: jobs.RecoveryPoint) -> Out:
    return drop_none({"MoveToColdStorageAt": point.move_to_cold_at, "DeleteAt": point.delete_at})


def recovery_point(point: jobs.RecoveryPoint, now: datetime) -> Out:
    storage = lifecycle.storage_class_at(point.calculated_lifecycle, now).value
    return drop_none(
        {
            "RecoveryPointArn": point.arn,
            "BackupVaultName": point.backup_vault_name,
            "BackupVaultArn": point.backup_vault_arn,
            "SourceBackupVaultArn": point.source_backup_vault_arn,
            "ResourceArn": point.resource_arn,
            "ResourceType": point.resource_type,
            "ResourceName": point.resource_name,
            "CreatedBy": point.created_by or None,
            "IamRoleArn": point.iam_role_arn,
            "Status": point.status,
            "StatusMessage": point.status_message,
            "CreationDate": point.creation_date,
            "InitiationDate": point.initiation_date,
            "CompletionDate": point.completion_date,
            "BackupSizeInBytes": point.backup_size_in_bytes,
            "CalculatedLifecycle": calculated(point) or None,
            "Lifecycle": _lifecycle(point.lifecycle),
            "EncryptionKeyArn": point.encryption_key_arn,
            "EncryptionKeyType": point.encryption_key_type,
            "IsEncrypted": bool(point.is_encrypted),
            "StorageClass": storage if storage != "DELETED" else "WARM",
            "LastRestoreTime": point.last_restore_time,
            "ParentRecoveryPointArn": point.parent_recovery_point_arn,
            "CompositeMemberIdentifier": point.composite_member_identifier,
            "IsParent": bool(point.is_parent),
            "VaultType": point.vault_type,
        }
    )


def recovery_point_by_resource(point: jobs.RecoveryPoint, now: datetime) -> Out:
    """A ListRecoveryPointsByResource item: its shape names the point's size
    ``BackupSizeBytes`` (the other lists and DescribeRecoveryPoint: BackupSizeInBytes);
    only the members the item shape models are sent."""
    out = recovery_point(point, now)
    return dict(out, BackupSizeBytes=point.backup_size_in_bytes)


def recovery_point_member(point: jobs.RecoveryPoint) -> Out:
    """A ListRecoveryPointsByLegalHold item (``RecoveryPointMember``)."""
    return {
        "RecoveryPointArn": point.arn,
        "ResourceArn": point.resource_arn,
        "ResourceType": point.resource_type,
        "BackupVaultName": point.backup_vault_name,
    }


def restore_job(job: jobs.RestoreJob) -> Out:
    return drop_none(
        {
            "AccountId": job.account_id,
            "RestoreJobId": job.restore_job_id,
            "RecoveryPointArn": job.recovery_point_arn,
            "SourceResourceArn": job.source_resource_arn,
            "BackupVaultArn": job.backup_vault_arn,
            "CreationDate": job.creation_date,
            "CompletionDate": job.completion_date,
            "Status": str(job.status),
            "StatusMessage": job.status_message,
            "PercentDone": _percent(job.percent_done),
            "BackupSizeInBytes": job.backup_size_in_bytes,
            "IamRoleArn": job.iam_role_arn,
            "ExpectedCompletionTimeMinutes": job.expected_completion_time_minutes,
            "CreatedResourceArn": job.created_resource_arn,
            "ResourceType": job.resource_type,
            "RecoveryPointCreationDate": job.recovery_point_creation_date,
            "CreatedBy": job.created_by,
            "IsParent": bool(job.is_parent),
            "ParentJobId": job.parent_job_id,
        }
    )


def restore_job_metadata(job: jobs.RestoreJob) -> Out:
    """GetRestoreJobMetadata's output."""
    return {"RestoreJobId": job.restore_job_id, "Metadata": dict(job.metadata or {})}


def backup_job_summary(row: Mapping[str, Any]) -> Out:
    """One ListBackupJobSummaries entry (a count per account, state, type, category)."""
    return {
        "Region": row["region"],
        "AccountId": row["account_id"],
        "State": row["state"],
        "ResourceType": row["resource_type"],
        "MessageCategory": row["message_category"] or "",
        "Count": int(row["count"]),
        "StartTime": row["start_time"],
        "EndTime": row["end_time"],
    }


def protected_resource(row: Row) -> Out:
    return drop_none(
        {
            "ResourceArn": row["arn"],
            "ResourceType": row["resource_type"],
            "ResourceName": row["name"],
            "LastBackupTime": row["last_backup_time"],
            "LastBackupVaultArn": row["last_backup_vault_arn"],
            "LastRecoveryPointArn": row["last_recovery_point_arn"],
            "LatestRestoreExecutionTimeMinutes": row["latest_restore_execution_time_minutes"],
            "LatestRestoreJobCreationDate": row["latest_restore_job_creation_date"],
            "LatestRestoreRecoveryPointCreationDate": row[
                "latest_restore_recovery_point_creation_date"
            ],
        }
    )


def registered_resource(row: Row) -> Out:
    """The extension API's resource shape (JSON: datetimes as epoch seconds)."""
    return {
        "ResourceArn": row["arn"],
        "ResourceType": row["resource_type"],
        "Name": row["name"],
        "Source": row["source"],
        "Tags": dict(row.get("tags") or {}),
        "CreationDate": row["created_at"].timestamp(),
    }


def copy_job(job: jobs.CopyJob) -> Out:
    """A CopyJob (DescribeCopyJob, ListCopyJobs). The shape has no BytesTransferred or
    PercentDone: what moved is in StatusMessage once the job ends."""
    return drop_none(
        {
            "AccountId": job.account_id,
            "CopyJobId": job.copy_job_id,
            "SourceBackupVaultArn": job.source_backup_vault_arn,
            "SourceRecoveryPointArn": job.source_recovery_point_arn,
            "DestinationBackupVaultArn": job.destination_backup_vault_arn,
            "DestinationVaultType": job.destination_vault_type,
            "DestinationRecoveryPointArn": job.destination_recovery_point_arn,
            "DestinationEncryptionKeyArn": job.destination_encryption_key_arn,
            "DestinationRecoveryPointLifecycle": _lifecycle(
                job.destination_recovery_point_lifecycle
            ),
            "ResourceArn": job.resource_arn,
            "ResourceType": job.resource_type,
            "ResourceName": job.resource_name,
            "CreationDate": job.creation_date,
            "CompletionDate": job.completion_date,
            "State": str(job.state),
            "StatusMessage": job.status_message,
            "MessageCategory": job.message_category,
            "BackupSizeInBytes": job.backup_size_in_bytes,
            "IamRoleArn": job.iam_role_arn,
            "CreatedBy": job.created_by,
            "CreatedByBackupJobId": job.created_by_backup_job_id,
            "CompositeMemberIdentifier": job.composite_member_identifier,
            "ParentJobId": job.parent_job_id,
            "IsParent": bool(job.is_parent),
        }
    )
