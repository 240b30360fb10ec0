"""Vault notifications and SNS messages as rules: which event a job change is, what AWS
accepts in PutBackupVaultNotifications, when a failed delivery is tried again, and the
exact text SNS signs.

    >>> job_events("backup", "COMPLETED")
    ('BACKUP_JOB_COMPLETED', 'BACKUP_JOB_SUCCESSFUL')
    >>> retry_delay(1).total_seconds(), retry_delay(20).total_seconds()
    (5.0, 3600.0)
    >>> string_to_sign({"Type": "Notification", "MessageId": "m", "TopicArn": "t",
    ...                 "Message": "hi", "Timestamp": "2026-01-01T00:00:00.000Z"})
    'Message\\nhi\\nMessageId\\nm\\nTimestamp\\n2026-01-01T00:00:00.000Z\\nTopicArn\\nt\\nType\\nNotification\\n'

Pure: no I/O, no clock.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import timedelta

from snowvault.core.errors import InvalidInput

BACKUP_VAULT_EVENTS = (
    "BACKUP_JOB_STARTED",
    "BACKUP_JOB_COMPLETED",
    "BACKUP_JOB_SUCCESSFUL",
    "BACKUP_JOB_FAILED",
    "BACKUP_JOB_EXPIRED",
    "RESTORE_JOB_STARTED",
    "RESTORE_JOB_COMPLETED",
    "RESTORE_JOB_SUCCESSFUL",
    "RESTORE_JOB_FAILED",
    "COPY_JOB_STARTED",
    "COPY_JOB_SUCCESSFUL",
    "COPY_JOB_FAILED",
    "RECOVERY_POINT_MODIFIED",
    "BACKUP_PLAN_CREATED",
    "BACKUP_PLAN_MODIFIED",
    "S3_BACKUP_OBJECT_FAILED",
    "S3_RESTORE_OBJECT_FAILED",
    "CONTINUOUS_BACKUP_INTERRUPTED",
    "RECOVERY_POINT_INDEX_COMPLETED",
    "RECOVERY_POINT_INDEX_DELETED",
    "RECOVERY_POINT_INDEXING_FAILED",
    "EKS_RESTORE_OBJECT_FAILED",
    "EKS_RESTORE_OBJECT_SKIPPED",
    "EKS_BACKUP_OBJECT_FAILED",
    "EKS_RESTORE_MODIFICATION_SUCCESS",
    "EKS_RESTORE_MODIFICATION_FAILED",
    "ACCESS_POINT_AVAILABLE",
    "ACCESS_POINT_CREATION_FAILED",
    "ACCESS_POINT_DELETED",
    "ACCESS_POINT_DELETION_FAILED",
    "ACCESS_POINT_EXPIRED",
    "ACCESS_POINT_DISASSOCIATED",
)
"""botocore's ``BackupVaultEvent`` enum, in its order (a test compares them)."""

_FINAL = {"COMPLETED", "PARTIAL", "FAILED", "ABORTED", "EXPIRED"}
_EVENTS: dict[tuple[str, str], tuple[str, ...]] = {
    ("backup", "RUNNING"): ("BACKUP_JOB_STARTED",),
    ("backup", "COMPLETED"): ("BACKUP_JOB_COMPLETED", "BACKUP_JOB_SUCCESSFUL"),
    ("backup", "PARTIAL"): ("BACKUP_JOB_COMPLETED",),
    ("backup", "FAILED"): ("BACKUP_JOB_COMPLETED", "BACKUP_JOB_FAILED"),
    ("backup", "ABORTED"): ("BACKUP_JOB_COMPLETED", "BACKUP_JOB_FAILED"),
    ("backup", "EXPIRED"): ("BACKUP_JOB_COMPLETED", "BACKUP_JOB_EXPIRED"),
    ("restore", "RUNNING"): ("RESTORE_JOB_STARTED",),
    ("restore", "COMPLETED"): ("RESTORE_JOB_COMPLETED", "RESTORE_JOB_SUCCESSFUL"),
    ("restore", "FAILED"): ("RESTORE_JOB_COMPLETED", "RESTORE_JOB_FAILED"),
    ("restore", "ABORTED"): ("RESTORE_JOB_COMPLETED", "RESTORE_JOB_FAILED"),
    ("copy", "RUNNING"): ("COPY_JOB_STARTED",),
    ("copy", "COMPLETED"): ("COPY_JOB_SUCCESSFUL",),
    ("copy", "PARTIAL"): ("COPY_JOB_SUCCESSFUL",),
    ("copy", "FAILED"): ("COPY_JOB_FAILED",),
}

TOPIC_ARN = re.compile(r"^arn:aws:sns:([a-z0-9-]+):(\d{12}):([A-Za-z0-9_-]{1,256})$")
TOPIC_NAME = re.compile(r"^[A-Za-z0-9_-]{1,256}$")

BACKOFF = (5, 15, 60, 300, 900, 1800, 3600)
"""Seconds before attempt 2, 3, ...; the last value repeats."""
MAX_ATTEMPTS = 20
"""A delivery that failed this many times is given up (FAILED, kept for the record)."""


def job_events(kind: str, state: str) -> tuple[str, ...]:
    """The vault events a job of ``kind`` entering ``state`` raises (AWS sends
    BACKUP_JOB_COMPLETED for every end, with the state in the ``State`` attribute)."""
    return _EVENTS.get((str(kind), str(state)), ())


def is_final(state: str) -> bool:
    return state in _FINAL


def check_topic_arn(arn: object) -> tuple[str, str, str]:
    """(region, account, name) of an SNS topic ARN; InvalidInput otherwise."""
    found = TOPIC_ARN.match(arn) if isinstance(arn, str) else None
    if found is None:
        raise InvalidInput(detail=f"SNSTopicArn {arn!r} is not an SNS topic ARN")
    return found.group(1), found.group(2), found.group(3)


def check_events(events: object) -> list[str]:
    """PutBackupVaultNotifications' BackupVaultEvents: a non-empty list of known event
    names (duplicates dropped, order kept); InvalidInput names the first unknown one."""
    if not isinstance(events, Sequence) or isinstance(events, str) or not events:
        raise InvalidInput(detail="BackupVaultEvents must list at least one event")
    out: list[str] = []
    for event in events:
        if event not in BACKUP_VAULT_EVENTS:
            raise InvalidInput(detail=f"BackupVaultEvents: {event!r} is not a backup vault event")
        if event not in out:
            out.append(str(event))
    return out


def retry_delay(attempts: int) -> timedelta:
    """How long after failed attempt number ``attempts`` (1-based) to try again."""
    return timedelta(seconds=BACKOFF[min(max(attempts, 1), len(BACKOFF)) - 1])


_SIGNED_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": (
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ),
    "UnsubscribeConfirmation": (
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ),
}


def string_to_sign(message: Mapping[str, str]) -> str:
    """SNS's canonical string: "Name\\nvalue\\n" for each signed field of the message
    type, in byte order; a Notification without Subject leaves Subject out."""
    fields = _SIGNED_FIELDS[message["Type"]]
    return "".join(f"{name}\n{message[name]}\n" for name in fields if name in message)
