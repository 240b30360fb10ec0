"""Catalog rows as AWS Backup output shapes (only modelled members are sent).

An empty structure (no CreatedBy, no calculated lifecycle) is left out, as AWS does; it
would cost every client a parse per item of a 1000-item page.

Must not depend on the CLI or web interfaces.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from snowvault.control.model import lifecycle
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


def _lifecycle(data: dict[str, Any] | None) -> Out | None:
    if not data:
        return None
    return {k: v for k, v in data.items() if k in ("MoveToColdStorageAfterDays", "DeleteAfterDays")}


def backup_job(row: Row) -> Out:
    return drop_none(
        {
            "AccountId": row["account_id"],
            "BackupJobId": row["job_id"],
            "BackupVaultName": row["backup_vault_name"],
            "BackupVaultArn": row["backup_vault_arn"],
            "VaultType": row["vault_type"],
            "RecoveryPointArn": row["recovery_point_arn"],
            "RecoveryPointLifecycle": _lifecycle(row["lifecycle"]),
            "EncryptionKeyArn": row["encryption_key_arn"],
            "IsEncrypted": bool(row["is_encrypted"]),
            "ResourceArn": row["resource_arn"],
            "ResourceType": row["resource_type"],
            "ResourceName": row["resource_name"],
            "CreationDate": row["creation_date"],
            "InitiationDate": row["initiation_date"],
            "CompletionDate": row["completion_date"],
            "State": row["state"],
            "StatusMessage": row["status_message"],
            "MessageCategory": row["message_category"],
            "PercentDone": _percent(row["percent_done"]),
            "BytesTransferred": row["bytes_transferred"],
            "BackupSizeInBytes": row["backup_size_in_bytes"],
            "IamRoleArn": row["iam_role_arn"],
            "CreatedBy": row["created_by"],
            "ExpectedCompletionDate": row["expected_completion_date"],
            "StartBy": row["start_by"],
            "BackupOptions": row["backup_options"],
            "BackupType": row["backup_type"],
            "ParentJobId": row["parent_job_id"],
            "IsParent": bool(row["is_parent"]),
        }
    )


def calculated(row: Row) -> Out:
    return drop_none({"MoveToColdStorageAt": row["move_to_cold_at"], "DeleteAt": row["delete_at"]})


def recovery_point(row: Row, now: datetime) -> Out:
    calc = lifecycle.CalculatedLifecycle(row["move_to_cold_at"], row["delete_at"])
    storage = lifecycle.storage_class_at(calc, now).value
    return drop_none(
        {
            "RecoveryPointArn": row["arn"],
            "BackupVaultName": row["backup_vault_name"],
            "BackupVaultArn": row["backup_vault_arn"],
            "SourceBackupVaultArn": row["source_backup_vault_arn"],
            "ResourceArn": row["resource_arn"],
            "ResourceType": row["resource_type"],
            "ResourceName": row["resource_name"],
            "CreatedBy": row["created_by"] or None,
            "IamRoleArn": row["iam_role_arn"],
            "Status": row["status"],
            "StatusMessage": row["status_message"],
            "CreationDate": row["creation_date"],
            "InitiationDate": row["initiation_date"],
            "CompletionDate": row["completion_date"],
            "BackupSizeInBytes": row["backup_size_in_bytes"],
            "CalculatedLifecycle": calculated(row) or None,
            "Lifecycle": _lifecycle(row["lifecycle"]),
            "EncryptionKeyArn": row["encryption_key_arn"],
            "EncryptionKeyType": row["encryption_key_type"],
            "IsEncrypted": bool(row["is_encrypted"]),
            "StorageClass": storage if storage != "DELETED" else "WARM",
            "LastRestoreTime": row["last_restore_time"],
            "ParentRecoveryPointArn": row["parent_recovery_point_arn"],
            "CompositeMemberIdentifier": row["composite_member_identifier"],
            "IsParent": bool(row["is_parent"]),
            "VaultType": row["vault_type"],
        }
    )


def restore_job(row: Row) -> Out:
    return drop_none(
        {
            "AccountId": row["account_id"],
            "RestoreJobId": row["restore_job_id"],
            "RecoveryPointArn": row["recovery_point_arn"],
            "SourceResourceArn": row["source_resource_arn"],
            "BackupVaultArn": row["backup_vault_arn"],
            "CreationDate": row["creation_date"],
            "CompletionDate": row["completion_date"],
            "Status": row["status"],
            "StatusMessage": row["status_message"],
            "PercentDone": _percent(row["percent_done"]),
            "BackupSizeInBytes": row["backup_size_in_bytes"],
            "IamRoleArn": row["iam_role_arn"],
            "ExpectedCompletionTimeMinutes": row["expected_completion_time_minutes"],
            "CreatedResourceArn": row["created_resource_arn"],
            "ResourceType": row["resource_type"],
            "RecoveryPointCreationDate": row["recovery_point_creation_date"],
            "CreatedBy": row["created_by"],
            "IsParent": bool(row["is_parent"]),
            "ParentJobId": row["parent_job_id"],
        }
    )


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
